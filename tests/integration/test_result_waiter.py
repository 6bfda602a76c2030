"""The API's result waiter over the embedded store, with plain threads (the API runs it under gevent)."""

from __future__ import annotations

import threading
import time

import pytest

from fastdeploy.api.waiter import ResultWaiter
from fastdeploy.store.codec import pack, unpack
from fastdeploy.store.local import LocalStore


class CountingStore(LocalStore):
    """Counts the reads a waiter makes, so a test can tell a rung result from one read back."""

    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.result_reads = 0
        # a waiter asked about some request and heard back: it is registered and listening, so a result
        # written from now on reaches it by ring (set before the answer, a fast loop could finish the
        # request first and the waiter would rightly read it back)
        self.asked = threading.Event()

    def result(self, request_id):
        self.result_reads += 1
        return super().result(request_id)

    def finished(self, request_ids):
        done = super().finished(request_ids)
        self.asked.set()
        return done


@pytest.fixture
def stores(tmp_path):
    api, loop = CountingStore(tmp_path), LocalStore(tmp_path)
    waiter = ResultWaiter(api)
    yield api, loop, waiter
    waiter.close()
    api.close()
    loop.close()


def answer_later(loop: LocalStore, claims: list[int], after: threading.Event) -> threading.Thread:
    """A loop thread that answers the queued inputs in claims of the given sizes, uppercased, once ``after`` is set."""
    def run() -> None:
        after.wait(5)
        for size in claims:
            batch = []
            while not batch:
                loop.wait_for_work(1)
                batch = loop.claim(size, 30)
            loop.complete(batch, [pack(unpack(item.payload).upper()) for item in batch])
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_request_whose_result_was_rung_is_answered_without_reading_the_store(stores):
    api, loop, waiter = stores
    loop.wait_for_work(0)
    api.enqueue("r1", [pack("a"), pack("b")])
    thread = answer_later(loop, [2], after=api.asked)
    result = waiter.wait("r1", 5)
    thread.join()
    assert [unpack(o) for o in result.outputs] == ["A", "B"]
    assert result == api.result("r1")
    assert api.result_reads == 1  # the comparison above, not the waiter


def test_a_request_finished_over_two_batches_is_read_back(stores):
    api, loop, waiter = stores
    loop.wait_for_work(0)
    api.enqueue("r1", [pack("a"), pack("b")])
    thread = answer_later(loop, [1, 1], after=api.asked)
    result = waiter.wait("r1", 5)
    thread.join()
    assert [unpack(o) for o in result.outputs] == ["A", "B"]
    assert api.result_reads == 1


def test_an_idle_waiter_leaves_the_rings_and_listens_again_for_its_next_request(tmp_path):
    api, loop = CountingStore(tmp_path), LocalStore(tmp_path)
    waiter = ResultWaiter(api, idle_exit_s=0.01)
    listeners = lambda: sorted(path.name.split(".")[0] for path in (tmp_path / "bells").iterdir())
    for request_id in ("r1", "r2"):
        api.asked.clear()
        api.enqueue(request_id, [pack("a")])
        thread = answer_later(loop, [1], after=api.asked)
        assert [unpack(o) for o in waiter.wait(request_id, 5).outputs] == ["A"]
        thread.join()
        assert "results" in listeners()
        for _ in range(100):  # bounded: the poller leaves after idle_exit_s and one backstop wait
            if waiter._poller is None:
                break
            time.sleep(0.02)
        assert listeners() == ["work1"]  # only the loop's bell: rings no longer queue up for the idle API
    assert api.result_reads == 0  # both answered from their rings
    waiter.close()
    api.close()
    loop.close()


def test_a_request_still_queued_at_its_timeout_raises_timeout_error(stores):
    api, _, waiter = stores
    api.enqueue("r1", [pack("a")])
    with pytest.raises(TimeoutError):
        waiter.wait("r1", 0.05)
