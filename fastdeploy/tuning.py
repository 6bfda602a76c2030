"""Pick a batch size at startup from measured timings, not from a guess.

Bigger batches raise throughput until the hardware is saturated, then only
add latency. The tuner times batches of 1, 2, 4, ... up to the cap (or until
a batch takes longer than ``max_batch_latency_ms``) and picks the smallest
size whose throughput is within ``min_gain`` of the best it measured: past
that size, throughput stops improving meaningfully and only latency grows.
Measuring every size rather than stopping at the first flat step matters:
CPU models often plateau at small sizes and gain again at larger ones.
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


MIN_TIMED_S = 0.1  # fast batches are repeated until this much was timed
MAX_RUNS = 50


def time_batch(run_batch: Callable[[list], None], inputs: list, repeats: int,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """Fastest run after one warm-up, in ms: the least noisy estimate on a shared machine.

    At least ``repeats`` runs, more for fast batches (until MIN_TIMED_S was spent),
    so a millisecond batch gets as many chances at a quiet moment as a slow one.
    """
    run_batch(inputs)
    best, spent, runs = float("inf"), 0.0, 0
    while runs < repeats or (spent < MIN_TIMED_S and runs < MAX_RUNS):
        start = clock()
        run_batch(inputs)
        elapsed = clock() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best * 1000


def tune_batch_size(run_batch: Callable[[list], None], example: list, *, max_batch_size: int,
                    max_batch_latency_ms: float, min_gain: float, repeats: int = 3,
                    clock: Callable[[], float] = time.perf_counter) -> tuple[int, list[Timing]]:
    """Return the chosen batch size and every timing measured on the way."""
    timings: list[Timing] = []
    for size in candidate_sizes(max_batch_size):
        inputs = [example[i % len(example)] for i in range(size)]
        timing = Timing(size, round(time_batch(run_batch, inputs, repeats, clock), 3))
        log.info("tuning: batch %d took %.2f ms (%.1f items/s)", size, timing.batch_ms, timing.items_per_s)
        if timing.batch_ms > max_batch_latency_ms and timings:
            break
        timings.append(timing)
    best = max(timing.items_per_s for timing in timings)
    chosen = next(t for t in timings if t.items_per_s >= best * (1 - min_gain))
    return chosen.batch_size, timings
