"""The loop: claim a batch, run the predictor, write the results back, repeat.

One bounded ``run()`` with named exits, in the manner of rq's worker: a stop
flag set by signal handlers, a ``finally`` that deregisters, and capped
back-off when the store misbehaves. A heartbeat thread reports the loop alive
and renews the leases of the batch being predicted, so a long batch is never
mistaken for a dead loop while a killed loop's batch is claimed again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable

from fastdeploy.batching import FixedBatching, LatencyTarget, PredictTimes
from fastdeploy.errors import RecipeError
from fastdeploy.files import FileBridge
from fastdeploy.recipe import Recipe, run_checked
from fastdeploy.settings import Settings
from fastdeploy.store.base import PREDICTOR_FAILED, LoopInfo, QueueItem, Store
from fastdeploy.store.codec import UnstorableError, pack, unpack
from fastdeploy.store_ahead import StoreAhead
from fastdeploy.tuning import Timing, tune_batch_size

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
IDLE_WAIT_S = 0.1
# Store work runs beside the predictor only when the predictor leaves its CPU mostly idle (a GPU,
# a remote model, I/O): beside a CPU-bound one it competes for the same cores and memory bandwidth
# (measured: torch MLP at 64 callers on 2 cores, 6 % fewer requests/s with it than without).
OVERLAP_MAX_CPU_SHARE = 0.5


class Loop:
    def __init__(self, recipe: Recipe, store: Store, settings: Settings, *, stage: int = 1,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.recipe = recipe
        self.store = store
        self.settings = settings
        self.stage = stage
        self.stage_def = recipe.stage(stage)
        self.streams_to_clients = stage == len(recipe.stages)
        self.files = FileBridge(recipe.config)
        self.wall_clock = wall_clock
        self.loop_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.batch_size = settings.batch_size
        self.batching: FixedBatching | LatencyTarget = FixedBatching(self.batch_size, settings.max_wait_ms / 1000)
        self.tuning: list[Timing] = []
        self.started_at = wall_clock()
        self._stop = threading.Event()
        self._in_flight: list[int] = []
        self._ahead: StoreAhead | None = None  # only while serving: see store_ahead.py
        self._returning = 0  # inputs of the last batch: their callers are likely to come back
        self._predict_ended_at = 0.0  # wall clock: inputs queued before it waited through the last predict
        self._last_predict_s = 0.0
        self._last_predict_cpu_share = 0.0  # thread CPU time / wall time of the last predict
        self.served = {"batches": 0, "items": 0, "failed_batches": 0, "predict_s": 0.0}

    # -- lifecycle ----------------------------------------------------------

    def run(self) -> None:
        """Tune, then serve until stop() is called."""
        self.prepare()
        self.serve()

    def serve(self) -> None:
        """Serve batches until stop() is called; the running batch always finishes."""
        heartbeat = threading.Thread(target=self._heartbeat_forever, name="heartbeat", daemon=True)
        heartbeat.start()
        log.info("loop %s: serving %s stage %d with batch size %d", self.loop_id, self.recipe.name, self.stage,
                 self.batch_size)
        self._ahead = StoreAhead(self.store, self.stage, self.settings.lease_s)
        backoff = 0.0
        try:
            while not self._stop.is_set():
                try:
                    self.step()
                    backoff = 0.0
                except Exception:
                    backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_S)
                    log.exception("loop %s: store error; retrying in %.1fs", self.loop_id, backoff)
                    self._stop.wait(backoff)
        finally:
            self._stop.set()
            self._finish_claimed_work()
            heartbeat.join(timeout=5)
            self._deregister()
            log.info("loop %s: stopped", self.loop_id)

    def _finish_claimed_work(self) -> None:
        """Serve a batch claimed ahead and land the results written behind, so a stop hands nothing back."""
        ahead, self._ahead = self._ahead, None
        try:
            claimed = ahead.take()
            if claimed:
                self.run_batch(claimed)
            ahead.flush()
        except Exception:
            log.exception("loop %s: could not finish its claimed work; it is served again once its lease "
                          "expires", self.loop_id)
        finally:
            ahead.close()

    def stop(self) -> None:
        """Safe from a signal handler: only sets a flag."""
        self._stop.set()

    def prepare(self) -> None:
        """Smoke-test the predictor on the example and pick the batch size."""
        example = self.recipe.example(self.stage)
        self._run_checked(example)
        target_s = self.settings.target_p99_ms / 1000
        if self.settings.batch_size and not target_s:
            log.info("loop %s: batch size fixed at %d", self.loop_id, self.batch_size)
        else:  # a latency target needs the timings even when the size is fixed
            tuned, self.tuning = tune_batch_size(
                self._run_checked, example,
                max_batch_size=self.settings.max_batch_size,
                max_batch_latency_ms=self.settings.max_batch_latency_ms,
                min_gain=self.settings.min_tuning_gain,
            )
            self.batch_size = self.settings.batch_size or tuned
            log.info("loop %s: batch size %d (%s)", self.loop_id, self.batch_size,
                     "fixed" if self.settings.batch_size else "tuned")
        if target_s:
            self.batching = LatencyTarget(target_s, PredictTimes(self.tuning), drain_size=self.batch_size,
                                          max_batch_size=self.settings.max_batch_size)
            log.info("loop %s: holding p99 under %.0f ms; first batch cap %d", self.loop_id,
                     self.settings.target_p99_ms, self.batching.cap)
        else:
            self.batching = FixedBatching(self.batch_size, self.settings.max_wait_ms / 1000)
        self.store.heartbeat(self.info())

    def _run_checked(self, inputs: list) -> list:
        """Run outside the queue (smoke test, tuning); output files are checked and removed as in serving.

        Any failure here is the recipe's: it cannot serve even its own examples.
        """
        try:
            return [self.files.from_predictor(output) for output in run_checked(self.stage_def, inputs)]
        except RecipeError:
            raise
        except Exception as exc:
            raise RecipeError(f"predictor in {self.stage_def.file} failed on {len(inputs)} example input(s): "
                              f"{type(exc).__name__}: {exc}") from exc

    # -- one step -----------------------------------------------------------

    def step(self) -> int:
        """Serve one batch if there is work; return how many inputs were served."""
        batch = self.collect_batch()
        if batch:
            self.run_batch(batch)
            self._returning = len(batch)
        return len(batch)

    def collect_batch(self) -> list[QueueItem]:
        """Take what waits; if that is less than the demand in sight, wait briefly for the rest.

        Callers just answered usually come straight back, so the inputs about to
        arrive are those of the batch that just finished, on top of the inputs
        that were queued while it ran. A short batch waits,
        as long as the batching policy allows, until it reaches that size, or,
        once it holds at least half of it, until no input came for
        batch_idle_ms. One caller at a time (a batch of one) never waits, so it
        adds no latency; concurrent callers merge into full batches instead of
        splitting into alternating half batches.
        """
        lease_s = self.settings.lease_s
        cap = self.batching.cap
        batch = self._ahead.take() if self._ahead else []
        if len(batch) < cap:
            batch += self.store.claim(cap - len(batch), lease_s, self.stage)
        if not batch:
            self.store.wait_for_work(IDLE_WAIT_S, self.stage)
            return batch
        demand = self._returning + self._waited_through_the_last_predict(batch)
        plan = self.batching.plan(self._oldest_age_s(batch), len(batch), demand)
        if len(batch) == cap and plan.cap > cap:  # the claim came back full: more wait, take them now
            batch += self.store.claim(plan.cap - len(batch), lease_s, self.stage)
        expected = min(demand, plan.cap)
        give_up_at = time.monotonic() + plan.wait_s
        idle_s = self.settings.batch_idle_ms / 1000
        in_sight = len(batch)  # claimed, plus queued at the last count
        while in_sight < expected:
            remaining = give_up_at - time.monotonic()
            if remaining <= 0:
                break
            patience = remaining if in_sight * 2 < expected else min(idle_s, remaining)
            if not self.store.wait_for_work(patience, self.stage):
                break
            in_sight = len(batch) + self.store.waiting(self.stage)
        if in_sight > len(batch):  # one claim for all that came: a claim per arrival would hold the
            batch += self.store.claim(plan.cap - len(batch), lease_s, self.stage)  # write lock the API needs
        return batch

    def _waited_through_the_last_predict(self, batch: list[QueueItem]) -> int:
        """Inputs queued before the last predict ended: demand on top of its returning callers.

        Those queued since are the callers coming back (a lone caller answered before the
        results' commit can be back before the next claim): counting them twice made a
        batch of one wait batch_idle_ms for a second input that was not coming.
        """
        return sum(1 for item in batch if item.created_at is None or item.created_at < self._predict_ended_at)

    def _oldest_age_s(self, batch: list[QueueItem]) -> float:
        created = [item.created_at for item in batch if item.created_at is not None]
        return max(0.0, self.wall_clock() - min(created)) if created else 0.0

    def run_batch(self, batch: list[QueueItem]) -> None:
        """Predict and store; any failure fails only this batch's requests."""
        self._in_flight = [item.item_id for item in batch]
        written = []
        try:
            try:
                inputs, written = self.files.to_predictor([unpack(item.payload) for item in batch])
                if (self._ahead and len(batch) >= self.batching.cap and not self._stop.is_set()
                        and self._last_predict_s and self._last_predict_cpu_share < OVERLAP_MAX_CPU_SHARE):
                    self._ahead.claim_before(time.monotonic() + self._last_predict_s, self.batching.cap)
                outputs = self._predict(batch, inputs)
                packed = [self._pack(output) for output in outputs]
            except Exception as exc:
                self.served["failed_batches"] += 1
                log.warning("loop %s: batch of %d failed: %s: %s", self.loop_id, len(batch),
                            type(exc).__name__, exc)
                self.store.fail([item.request_id for item in batch], PREDICTOR_FAILED, self._describe(exc))
                return
            self._store_results(batch, packed)
            self.batching.observe(len(batch), self._last_predict_s)
            self.served["batches"] += 1
            self.served["items"] += len(batch)
        finally:
            self.files.remove(written)
            self._in_flight = []

    def _store_results(self, batch: list[QueueItem], packed: list[bytes]) -> None:
        """Write behind when the next batch is already claimed in full; otherwise now, on this thread."""
        if self._ahead is None:
            self.store.complete(batch, packed)
        elif self._ahead.settle() >= self.batching.cap:
            self._ahead.write(batch, packed)
        else:
            self._ahead.flush()
            self.store.complete(batch, packed)

    def _predict(self, batch: list[QueueItem], inputs: list) -> list:
        """Outputs of one batch, timed; a streaming last stage also stores each chunk as it comes."""

        def store_chunks(chunks: list) -> None:
            self.store.add_chunks(batch, [None if c is None else self._pack(c) for c in chunks])

        started, cpu_started = time.monotonic(), time.thread_time()
        try:
            return run_checked(self.stage_def, inputs, self.batch_size,
                               store_chunks if self.streams_to_clients else None)
        finally:
            self._last_predict_s = time.monotonic() - started
            self._predict_ended_at = self.wall_clock()
            self._last_predict_cpu_share = (time.thread_time() - cpu_started) / max(self._last_predict_s, 1e-9)
            self.served["predict_s"] += self._last_predict_s

    def _pack(self, output) -> bytes:
        return pack(self.files.from_predictor(output))

    def _describe(self, exc: BaseException) -> str:
        where = f"stage {self.stage} ({self.stage_def.file.name}): " if len(self.recipe.stages) > 1 else ""
        if isinstance(exc, (RecipeError, UnstorableError)):
            return f"{where}{exc}"
        return f"{where}predictor in {self.stage_def.file} raised {type(exc).__name__}: {exc}"

    # -- heartbeat ----------------------------------------------------------

    def info(self) -> LoopInfo:
        return LoopInfo(
            loop_id=self.loop_id, stage=self.stage, pid=os.getpid(), host=socket.gethostname(),
            batch_size=self.batching.cap, batching=self.batching.describe(), started_at=self.started_at,
            heartbeat_at=self.wall_clock(), tuning=[timing.as_dict() for timing in self.tuning], **self.served,
        )

    def _heartbeat_forever(self) -> None:
        parent = os.getppid()
        last_sweep = time.monotonic()
        while not self._stop.wait(self.settings.heartbeat_interval_s):
            if os.getppid() != parent:
                log.warning("loop %s: parent process %d is gone; stopping", self.loop_id, parent)
                self.stop()
                return
            try:
                self.store.heartbeat(self.info())
                ahead = self._ahead
                in_flight = self._in_flight + (ahead.held_ids() if ahead else [])
                if in_flight:
                    self.store.renew(in_flight, self.settings.lease_s)
                if time.monotonic() - last_sweep > self.settings.sweep_interval_s:
                    self.store.sweep()
                    last_sweep = time.monotonic()
            except Exception:
                log.exception("loop %s: heartbeat failed", self.loop_id)

    def _deregister(self) -> None:
        try:
            self.store.remove_loop(self.loop_id)
        except Exception:
            log.exception("loop %s: could not deregister", self.loop_id)
