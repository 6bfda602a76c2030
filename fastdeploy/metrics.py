"""Prometheus metrics, read from the store, so every API worker reports the same numbers.

Loops report their counters with each heartbeat; the queue length comes from
the store itself. Nothing is kept in API process memory, so scaling API
workers or restarting one never resets or splits a series.
"""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from fastdeploy.store.base import LoopInfo, Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector:
    def __init__(self, store: Store, live_loops: Callable[[], list[LoopInfo]]) -> None:
        self.store = store
        self.live_loops = live_loops

    def collect(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily("fastdeploy_queue_length", "Inputs queued or being predicted.")
        queue.add_metric([], self.store.queue_length())
        yield queue
        loops = self.live_loops()
        labels = ["stage", "loop"]
        families = {
            "batch_size": GaugeMetricFamily("fastdeploy_batch_size",
                                            "Most inputs the loop's next batch may hold (its current choice).",
                                            labels=labels),
            "batches": CounterMetricFamily("fastdeploy_batches", "Batches predicted.", labels=labels),
            "items": CounterMetricFamily("fastdeploy_items", "Inputs predicted.", labels=labels),
            "failed_batches": CounterMetricFamily("fastdeploy_failed_batches", "Batches whose predictor failed.",
                                                  labels=labels),
            "predict_s": CounterMetricFamily("fastdeploy_predict_seconds", "Time spent inside the predictor.",
                                             labels=labels),
        }
        wait = GaugeMetricFamily("fastdeploy_batch_wait_seconds",
                                 "Longest the loop's last batch could wait for more inputs.", labels=labels)
        for loop in loops:
            for field, family in families.items():
                family.add_metric([str(loop.stage), loop.loop_id], getattr(loop, field))
            wait.add_metric([str(loop.stage), loop.loop_id], loop.batching.get("wait_ms", 0.0) / 1000)
        yield from families.values()
        yield wait
        per_stage = GaugeMetricFamily("fastdeploy_loops", "Live loops per stage.", labels=["stage"])
        for stage in sorted({loop.stage for loop in loops}):
            per_stage.add_metric([str(stage)], sum(loop.stage == stage for loop in loops))
        yield per_stage


def render(store: Store, live_loops: Callable[[], list[LoopInfo]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, live_loops))
    return generate_latest(registry)
