"""How big the next batch may grow and how long it may wait to grow: the loop asks a policy.

Both wait for the demand in sight (the loop counts it) at most a quarter of
the last batch's predict time: waiting longer than a fraction of a batch's own
time costs more throughput than it gains. ``FixedBatching`` (the default)
keeps the tuned size and also waits at most ``max_wait_ms``.
``LatencyTarget`` (``--target-p99-ms``) chooses size and wait for every batch
from the age of its oldest input and the predict times seen so far (seeded by
the tuner, updated by every batch): the largest batch, and the longest wait,
that still let that input finish within the target. When the queue is deeper
than one batch within the target, or its oldest input is late already, it
serves at the size of best throughput, as the fixed policy does: under load,
full batches clear the queue soonest. Both see only the store: the API's own
time (HTTP, about 1-3 ms) is outside the target.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from fastdeploy.tuning import Timing

WAIT_FRACTION = 0.25  # a short batch waits at most this share of the last batch's predict time
EWMA_WEIGHT = 0.2  # weight of the newest predict time of a size in its running estimate


@dataclass(frozen=True)
class Plan:
    cap: int  # most inputs the batch may hold
    wait_s: float  # longest it may wait for more before it runs


class FixedBatching:
    """The tuned (or fixed) batch size and a short, bounded wait."""

    def __init__(self, batch_size: int, max_wait_s: float) -> None:
        self.cap = batch_size
        self.max_wait_s = max_wait_s
        self.wait_s = 0.0
        self._last_predict_s = 0.0

    def plan(self, oldest_age_s: float, claimed: int, demand: int) -> Plan:
        self.wait_s = min(self.max_wait_s, WAIT_FRACTION * self._last_predict_s)
        return Plan(self.cap, self.wait_s)

    def observe(self, size: int, predict_s: float) -> None:
        self._last_predict_s = predict_s

    def describe(self) -> dict:
        return {"policy": "fixed", "batch_size": self.cap, "wait_ms": round(self.wait_s * 1000, 3)}


class PredictTimes:
    """Predict time per batch size: seeded by the tuner, kept current by every batch served.

    Sizes never seen are interpolated between the nearest seen sizes, or
    extrapolated along the per-input slope of the two largest.
    """

    def __init__(self, timings: list[Timing]) -> None:
        self._seconds = {t.batch_size: t.batch_ms / 1000 for t in timings}
        self._sizes = sorted(self._seconds)

    def observe(self, size: int, seconds: float) -> None:
        if size in self._seconds:
            self._seconds[size] += EWMA_WEIGHT * (seconds - self._seconds[size])
        else:
            self._seconds[size] = seconds
            bisect.insort(self._sizes, size)

    def estimate(self, size: int) -> float:
        sizes = self._sizes
        if not sizes:
            return 0.0
        if size in self._seconds:
            return self._seconds[size]
        at = bisect.bisect_left(sizes, size)
        if at == 0:
            return self._seconds[sizes[0]]
        if at == len(sizes):
            if len(sizes) == 1:
                return self._seconds[sizes[0]] * size / sizes[0]
            lo, hi = sizes[-2], sizes[-1]
        else:
            lo, hi = sizes[at - 1], sizes[at]
        slope = max(0.0, (self._seconds[hi] - self._seconds[lo]) / (hi - lo))
        return self._seconds[lo] + slope * (size - lo)

    def largest_within(self, budget_s: float, max_size: int) -> int:
        """The largest size (at least 1) whose predict time fits the budget (times grow with size)."""
        lo, hi = 1, max_size
        while lo < hi:
            middle = (lo + hi + 1) // 2
            if self.estimate(middle) <= budget_s:
                lo = middle
            else:
                hi = middle - 1
        return lo


class LatencyTarget:
    """Size and wait window per batch, so the p99 of an input's time in the store stays under a target."""

    def __init__(self, target_s: float, times: PredictTimes, drain_size: int, max_batch_size: int) -> None:
        self.target_s = target_s
        self.times = times
        self.drain_size = drain_size  # the size of best throughput, used when the target is out of reach
        self.max_batch_size = max_batch_size
        self.cap = self.times.largest_within(target_s, max_batch_size)
        self.wait_s = 0.0
        self.draining = False
        self._last_predict_s = 0.0

    def plan(self, oldest_age_s: float, claimed: int, demand: int) -> Plan:
        """``claimed``: inputs already taken (a full claim means more wait behind it);
        ``demand``: inputs the loop expects this batch to hold if it waits."""
        budget_s = self.target_s - oldest_age_s
        usual_wait_s = WAIT_FRACTION * self._last_predict_s
        queue_deeper_than_cap = claimed >= self.cap
        self.draining = queue_deeper_than_cap or self.times.estimate(claimed) > budget_s
        if self.draining:
            self.cap, self.wait_s = max(self.drain_size, claimed), usual_wait_s
        else:
            self.cap = max(claimed, self.times.largest_within(budget_s, self.max_batch_size))
            expected = max(claimed, min(demand, self.cap))
            self.wait_s = max(0.0, min(budget_s - self.times.estimate(expected), usual_wait_s))
        return Plan(self.cap, self.wait_s)

    def observe(self, size: int, predict_s: float) -> None:
        self.times.observe(size, predict_s)
        self._last_predict_s = predict_s

    def describe(self) -> dict:
        return {"policy": "target_p99", "target_p99_ms": round(self.target_s * 1000, 3), "batch_size": self.cap,
                "wait_ms": round(self.wait_s * 1000, 3), "draining": self.draining}
