"""Pick a batch size at startup from measured timings, not from a guess.

Bigger batches raise throughput until the hardware is saturated, then only
add latency. The tuner doubles the batch while throughput still rises by at
least ``min_gain`` and a batch stays under ``max_batch_latency_ms``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    batch_size: int
    batch_ms: float

    @property
    def items_per_s(self) -> float:
        return self.batch_size / (self.batch_ms / 1000) if self.batch_ms > 0 else float("inf")

    def as_dict(self) -> dict:
        return {**asdict(self), "items_per_s": round(self.items_per_s, 2)}


def candidate_sizes(max_batch_size: int) -> list[int]:
    sizes, size = [], 1
    while size < max_batch_size:
        sizes.append(size)
        size *= 2
    return sizes + [max_batch_size]


def time_batch(run_batch: Callable[[list], None], inputs: list, repeats: int,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """Fastest of ``repeats`` runs after one warm-up, in ms: the least noisy estimate on a shared machine."""
    run_batch(inputs)
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        run_batch(inputs)
        best = min(best, clock() - start)
    return best * 1000


def tune_batch_size(run_batch: Callable[[list], None], example: list, *, max_batch_size: int,
                    max_batch_latency_ms: float, min_gain: float, repeats: int = 3,
                    clock: Callable[[], float] = time.perf_counter) -> tuple[int, list[Timing]]:
    """Return the chosen batch size and every timing measured on the way."""
    timings: list[Timing] = []
    chosen: Timing | None = None
    for size in candidate_sizes(max_batch_size):
        inputs = [example[i % len(example)] for i in range(size)]
        timing = Timing(size, round(time_batch(run_batch, inputs, repeats, clock), 3))
        timings.append(timing)
        log.info("tuning: batch %d took %.2f ms (%.1f items/s)", size, timing.batch_ms, timing.items_per_s)
        if timing.batch_ms > max_batch_latency_ms and chosen is not None:
            break
        if chosen is not None and timing.items_per_s < chosen.items_per_s * (1 + min_gain):
            break
        chosen = timing
    return chosen.batch_size, timings
