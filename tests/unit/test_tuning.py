from __future__ import annotations

from fastdeploy.tuning import candidate_sizes, tune_batch_size


class SimulatedModel:
    """A predictor whose batch costs fixed_ms + per_item_ms * size on a simulated clock."""

    def __init__(self, fixed_ms: float, per_item_ms: float, saturate_at: int = 10**9) -> None:
        self.now = 0.0
        self.fixed_ms, self.per_item_ms, self.saturate_at = fixed_ms, per_item_ms, saturate_at
        self.sizes: list[int] = []

    def clock(self) -> float:
        return self.now

    def run(self, inputs: list) -> None:
        self.sizes.append(len(inputs))
        size = len(inputs)
        # past saturation every extra item costs as much as a whole batch would
        extra = max(0, size - self.saturate_at) * self.fixed_ms
        self.now += (self.fixed_ms + self.per_item_ms * size + extra) / 1000


def tune(model, **options):
    defaults = dict(max_batch_size=128, max_batch_latency_ms=1000, min_gain=0.1)
    return tune_batch_size(model.run, ["x"], clock=model.clock, **{**defaults, **options})


def test_candidates_double_up_to_the_cap():
    assert candidate_sizes(1) == [1]
    assert candidate_sizes(32) == [1, 2, 4, 8, 16, 32]
    assert candidate_sizes(48) == [1, 2, 4, 8, 16, 32, 48]


def test_picks_the_size_where_throughput_stops_improving():
    size, timings = tune(SimulatedModel(fixed_ms=20, per_item_ms=1, saturate_at=16))
    assert size == 16
    assert [t.batch_size for t in timings] == [1, 2, 4, 8, 16, 32]  # 64 passes the 1 s latency cap


def test_smallest_size_close_to_the_best_wins_over_a_slightly_faster_bigger_one():
    # 20 ms + 1 ms per item: 64 -> 762 items/s, 128 -> 865 items/s (within 15 %)
    size, _ = tune(SimulatedModel(fixed_ms=20, per_item_ms=1), min_gain=0.15)
    assert size == 64


def test_a_plateau_does_not_stop_the_search():
    model = SimulatedModel(fixed_ms=0, per_item_ms=1)
    costs = {1: 2.0, 2: 4.0, 4: 8.0, 8: 16.0, 16: 8.0, 32: 16.0}  # flat up to 8, then twice as fast

    def run(inputs):
        model.now += costs[len(inputs)] / 1000

    size, _ = tune_batch_size(run, ["x"], clock=model.clock, max_batch_size=32, max_batch_latency_ms=1000,
                              min_gain=0.1)
    assert size == 16


def test_batch_latency_cap_limits_the_size():
    size, timings = tune(SimulatedModel(fixed_ms=20, per_item_ms=1), max_batch_latency_ms=60)
    assert size == 32  # 52 ms fits, 84 ms does not
    assert timings[-1].batch_size == 32


def test_cheap_fixed_cost_model_goes_to_the_cap():
    size, timings = tune(SimulatedModel(fixed_ms=20, per_item_ms=0.01), max_batch_size=64)
    assert size == 64
    assert timings[-1].items_per_s > timings[0].items_per_s * 30


def test_inputs_cycle_through_the_example():
    seen = []
    tune_batch_size(seen.append, ["a", "b", "c"], max_batch_size=4, max_batch_latency_ms=1000, min_gain=-1,
                    repeats=1)
    assert ["a", "b", "c", "a"] in seen
