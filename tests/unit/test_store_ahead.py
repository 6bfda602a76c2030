"""Claiming ahead and writing behind, on both stores: nothing is lost, nothing is held."""

from __future__ import annotations

import threading
import time

from fastdeploy.loop import Loop
from fastdeploy.recipe import load_recipe
from fastdeploy.settings import Settings
from fastdeploy.store.codec import pack, unpack
from fastdeploy.store_ahead import StoreAhead
from tests.conftest import enqueue_numbers, write_recipe

LEASE_S = 30.0


def wait_until_held(ahead: StoreAhead, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(ahead.held_ids()) < n and time.monotonic() < deadline:
        time.sleep(0.005)


def test_a_claim_that_is_due_is_in_hand_and_leased(make_store):
    store = make_store()
    enqueue_numbers(store, 7)
    ahead = StoreAhead(store, stage=1, lease_s=LEASE_S)
    try:
        ahead.claim_before(time.monotonic(), 4)
        wait_until_held(ahead, 4)
        assert ahead.settle() == 4
        ahead.claim_before(time.monotonic(), 6)  # tops up what is held: nothing claimed is dropped
        wait_until_held(ahead, 6)
        assert [unpack(item.payload) for item in ahead.take()] == [0, 1, 2, 3, 4, 5]
        assert ahead.take() == []
        assert [item.request_id for item in store.claim(10, LEASE_S)] == ["r6"]
    finally:
        ahead.close()


def test_a_claim_not_yet_due_when_the_predictor_finishes_is_dropped(make_store):
    store = make_store()
    enqueue_numbers(store, 3)
    ahead = StoreAhead(store, stage=1, lease_s=LEASE_S)
    try:
        ahead.claim_before(time.monotonic() + 60, 4)
        assert ahead.settle() == 0
        assert len(store.claim(10, LEASE_S)) == 3
    finally:
        ahead.close()


def test_results_written_behind_are_stored_once_flushed(make_store):
    store = make_store()
    ids = enqueue_numbers(store, 3)
    batch = store.claim(3, LEASE_S)
    ahead = StoreAhead(store, stage=1, lease_s=LEASE_S)
    try:
        ahead.write(batch, [pack(f"out{i}") for i in range(3)])
        ahead.flush()
        assert ahead.held_ids() == []
        assert [unpack(store.result(i).outputs[0]) for i in ids] == ["out0", "out1", "out2"]
    finally:
        ahead.close()


PACED = """import time

def predictor(inputs, batch_size):
    time.sleep(0.05)
    return [x * 10 for x in inputs]
"""


def test_a_loop_at_full_load_serves_everything_and_a_stop_hands_back_nothing_claimed(make_store, tmp_path):
    """Stopped mid-batch at full load, the loop has claimed the next batch ahead: it serves it before it exits."""
    store = make_store()
    ids = enqueue_numbers(store, 40)
    loop = Loop(load_recipe(write_recipe(tmp_path / "paced", predictor=PACED)), make_store(),
                Settings(batch_size=4, max_batch_size=4))
    loop.prepare()
    thread = threading.Thread(target=loop.serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(store.finished(ids)) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.025)  # into the next batch, whose successor is claimed ahead near its end
    loop.stop()
    thread.join(10)
    assert not thread.is_alive()
    served = store.finished(ids)
    left = [item.request_id for item in store.claim(100, LEASE_S)]
    assert len(served) >= 12 and len(served) % 4 == 0
    assert set(served) | set(left) == set(ids) and not set(served) & set(left)
    assert all(unpack(store.result(i).outputs[0]) == 10 * int(i[1:]) for i in served)
