from __future__ import annotations

import threading
import time

import pytest

from fastdeploy.batching import FixedBatching, LatencyTarget, PredictTimes
from fastdeploy.loop import Loop
from fastdeploy.recipe import load_recipe
from fastdeploy.settings import Settings
from fastdeploy.store.codec import pack
from fastdeploy.store.local import LocalStore
from fastdeploy.tuning import Timing
from tests.conftest import ECHO, enqueue_numbers, write_recipe


def linear_times() -> PredictTimes:
    """20 ms for one input, 10 ms more per extra input (measured at 1 and 8)."""
    return PredictTimes([Timing(1, 20.0), Timing(8, 90.0)])


def test_predict_times_interpolate_and_extrapolate_from_what_was_measured():
    times = linear_times()
    assert times.estimate(1) == pytest.approx(0.020)
    assert times.estimate(4) == pytest.approx(0.050)
    assert times.estimate(16) == pytest.approx(0.170)
    assert times.largest_within(0.100, 32) == 9
    assert times.largest_within(0.001, 32) == 1, "one input always fits: a batch cannot be smaller"


def test_served_batches_correct_the_estimates():
    times = linear_times()
    for _ in range(50):
        times.observe(8, 0.045)  # the model got faster than the tuner saw (warm caches, another thread)
    assert times.estimate(8) == pytest.approx(0.045, rel=0.01)
    times.observe(3, 0.030)
    assert times.estimate(3) == pytest.approx(0.030)


def test_fresh_inputs_get_the_largest_batch_that_keeps_the_oldest_within_target():
    policy = LatencyTarget(0.100, linear_times(), drain_size=16, max_batch_size=32)
    assert policy.cap == 9
    plan = policy.plan(oldest_age_s=0.010, claimed=3, demand=3)
    assert plan.cap == 8  # 90 ms of predict time left after 10 ms in the queue
    assert plan.wait_s == 0.0, "before any batch was timed there is no usual wait"


def test_the_wait_is_the_usual_share_of_a_batch_unless_the_oldest_would_be_late():
    policy = LatencyTarget(0.200, linear_times(), drain_size=16, max_batch_size=8)
    policy.observe(8, 0.090)  # as estimated: the estimates stay put
    roomy = policy.plan(oldest_age_s=0.0, claimed=2, demand=8)
    assert roomy.cap == 8 and roomy.wait_s == pytest.approx(0.25 * 0.090)
    tight = policy.plan(oldest_age_s=0.100, claimed=2, demand=8)
    assert tight.wait_s == pytest.approx(0.200 - 0.100 - 0.090), "the wait ends where the oldest would be late"


def test_late_or_deep_queue_is_served_at_the_best_throughput_size():
    policy = LatencyTarget(0.100, linear_times(), drain_size=16, max_batch_size=32)
    late = policy.plan(oldest_age_s=0.500, claimed=2, demand=4)
    assert (late.cap, policy.draining) == (16, True)
    policy = LatencyTarget(0.100, linear_times(), drain_size=16, max_batch_size=32)
    deep = policy.plan(oldest_age_s=0.0, claimed=policy.cap, demand=policy.cap)
    assert deep.cap == 16 and policy.draining
    policy.observe(16, 0.100)
    assert policy.plan(oldest_age_s=0.5, claimed=3, demand=16).wait_s == pytest.approx(0.025), \
        "a draining loop still gathers the demand in sight for a moment: full batches clear a queue soonest"
    recovered = policy.plan(oldest_age_s=0.0, claimed=1, demand=1)
    assert recovered.cap > 1 and not policy.draining


def test_served_batches_move_the_plan():
    policy = LatencyTarget(0.100, linear_times(), drain_size=16, max_batch_size=32)
    for _ in range(50):
        policy.observe(9, 0.040)  # the model runs faster than the tuner measured
        policy.observe(16, 0.060)
    assert policy.plan(oldest_age_s=0.0, claimed=2, demand=2).cap > 16


def test_fixed_batching_waits_at_most_a_share_of_the_last_predict_time():
    policy = FixedBatching(32, max_wait_s=0.010)
    assert policy.plan(0.0, 1, 8).wait_s == 0.0
    policy.observe(8, 0.020)
    assert policy.plan(0.0, 1, 8).wait_s == pytest.approx(0.005)
    policy.observe(8, 0.400)
    assert policy.plan(0.0, 1, 8).wait_s == pytest.approx(0.010)
    assert policy.plan(0.0, 1, 8).cap == 32


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked(tmp_path):
    clock = FakeClock()
    store = LocalStore(tmp_path / "store", clock=clock)
    loop = Loop(load_recipe(ECHO), store, Settings(batch_size=16, max_batch_size=32), wall_clock=clock)
    loop.batching = LatencyTarget(0.100, linear_times(), drain_size=16, max_batch_size=32)
    yield clock, store, loop
    store.close()


def test_loop_under_a_target_takes_a_deep_late_queue_in_drain_sized_batches(clocked):
    clock, store, loop = clocked
    enqueue_numbers(store, 20)
    clock.now += 5.0  # everything waited far past the target
    assert loop.step() == 16
    assert loop.info().batching["draining"] is True
    assert loop.info().batch_size == 16
    assert loop.step() == 4


def test_loop_under_a_target_serves_fresh_work_at_once_and_reports_its_choice(clocked):
    clock, store, loop = clocked
    ids = enqueue_numbers(store, 3)
    clock.now += 0.010
    assert loop.step() == 3
    info = loop.info()
    assert info.batching["policy"] == "target_p99" and info.batching["draining"] is False
    assert info.batch_size == 8
    assert {store.result(i).status for i in ids} == {"done"}


def test_prepare_with_a_target_measures_timings_even_for_a_fixed_size(tmp_path):
    store = LocalStore(tmp_path / "store")
    try:
        loop = Loop(load_recipe(ECHO), store, Settings(batch_size=4, max_batch_size=8, target_p99_ms=50))
        loop.prepare()
        assert isinstance(loop.batching, LatencyTarget)
        assert loop.batching.drain_size == 4
        assert [t.batch_size for t in loop.tuning] == [1, 2, 4, 8]
        assert store.loops()[0].batching["target_p99_ms"] == 50
    finally:
        store.close()


class CountingStore(LocalStore):
    """Counts the loop's claims and its waits for work."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.claims = self.waits = 0

    def claim(self, *args, **kwargs):
        self.claims += 1
        return super().claim(*args, **kwargs)

    def wait_for_work(self, *args, **kwargs):
        self.waits += 1
        return super().wait_for_work(*args, **kwargs)


def test_a_batch_waiting_for_returning_callers_claims_them_at_once_not_one_by_one(tmp_path):
    """A claim takes the write lock the API needs to queue the next arrival: claiming per arrival
    slowed the very callers the batch waits for. The loop counts arrivals and claims once."""
    recipe = write_recipe(tmp_path / "paced", "import time\n\ndef predictor(inputs, batch_size):\n"
                                              "    time.sleep(0.4)\n    return inputs\n")
    store = CountingStore(tmp_path / "store")
    loop = Loop(load_recipe(recipe), store, Settings(batch_size=8, max_wait_ms=1000, batch_idle_ms=100))
    enqueue_numbers(store, 4)
    assert loop.step() == 4  # four callers answered: they come back, one at a time

    def trickle() -> None:
        for n in range(3):
            time.sleep(0.003)
            store.enqueue(f"back{n}", [pack(n)])

    store.enqueue("back", [pack(-1)])
    store.claims = 0
    arrivals = threading.Thread(target=trickle)
    arrivals.start()
    try:
        assert loop.step() == 4
    finally:
        arrivals.join()
        store.close()
    assert store.claims == 2  # what waited at once, then the three that came during the wait


def test_a_lone_caller_back_before_the_next_claim_is_served_without_waiting_for_a_second(tmp_path):
    """Answered before the commit, a lone caller can be queued again before the loop's next claim:
    it is the returning caller, not one more on top of it, so the batch of one starts at once."""
    recipe = write_recipe(tmp_path / "paced", "import time\n\ndef predictor(inputs, batch_size):\n"
                                              "    time.sleep(0.2)\n    return inputs\n")
    store = CountingStore(tmp_path / "store")
    loop = Loop(load_recipe(recipe), store, Settings(batch_size=8, max_wait_ms=1000, batch_idle_ms=1000))
    try:
        store.enqueue("first", [pack(1)])
        assert loop.step() == 1
        store.enqueue("back", [pack(2)])  # the same caller, answered
        store.waits = 0
        assert loop.step() == 1
        assert store.waits == 0
        store.enqueue("then", [pack(3)])
        store.enqueue("another", [pack(4)])  # two now: one more than came back, so none is waited for
        store.waits = 0
        assert loop.step() == 2
        assert store.waits == 0
    finally:
        store.close()
