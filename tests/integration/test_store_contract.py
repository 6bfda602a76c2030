"""The store contract, run against every backend through the make_store fixture."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from fastdeploy.store.base import (ATTEMPTS_EXHAUSTED, DEADLINE_EXCEEDED, DONE, FAILED, PENDING,
                                   PREDICTOR_FAILED, IdempotencyConflict, LoopInfo, NewRequest,
                                   QueueFullError)
from fastdeploy.store.codec import pack, unpack
from fastdeploy.store.local import LocalStore
from fastdeploy.store.rings import MAX_RING_BYTES


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def outputs_of(store, request_id):
    return [unpack(o) for o in store.result(request_id).outputs]


def test_enqueue_claim_complete_keeps_order(make_store):
    store = make_store()
    store.enqueue("r1", [pack(x) for x in ["a", "b", "c"]])
    batch = store.claim(10, lease_s=30)
    assert [unpack(i.payload) for i in batch] == ["a", "b", "c"]
    assert store.result("r1").status == PENDING
    store.complete(list(reversed(batch)), [pack(unpack(i.payload).upper()) for i in reversed(batch)])
    assert store.result("r1").status == DONE
    assert outputs_of(store, "r1") == ["A", "B", "C"]
    assert store.finished(["r1", "unknown"]) == {"r1"}


def test_claim_takes_oldest_first_and_respects_max_items(make_store):
    store = make_store()
    for n in range(5):
        store.enqueue(f"r{n}", [pack(n)])
    assert [i.request_id for i in store.claim(3, 30)] == ["r0", "r1", "r2"]
    assert [i.request_id for i in store.claim(3, 30)] == ["r3", "r4"]
    assert store.claim(3, 30) == []


def test_waiting_counts_the_queued_inputs_of_a_stage_not_those_claimed(make_store):
    store = make_store()
    store.enqueue("one", [pack(1), pack(2)], stages=2)
    store.enqueue("two", [pack(3)], stages=2)
    assert (store.waiting(1), store.waiting(2)) == (3, 0)
    claimed = store.claim(2, 30)
    assert (store.waiting(1), store.waiting(2)) == (1, 0)
    store.complete(claimed, [pack("a"), pack("b")])  # on to stage 2
    assert (store.waiting(1), store.waiting(2)) == (1, 2)


def test_request_finishes_only_when_all_inputs_are_done(make_store):
    store = make_store()
    store.enqueue("r", [pack(1), pack(2)])
    first = store.claim(1, 30)
    store.complete(first, [pack("one")])
    assert store.result("r").status == PENDING
    second = store.claim(1, 30)
    store.complete(second, [pack("two")])
    assert outputs_of(store, "r") == ["one", "two"]


def test_full_queue_refuses_and_accepts_again_once_drained(make_store):
    store = make_store(max_queue_length=3)
    store.enqueue("a", [pack(1), pack(2)])
    with pytest.raises(QueueFullError) as refused:
        store.enqueue("b", [pack(3), pack(4)])
    assert refused.value.limit == 3
    assert store.result("b") is None  # nothing of a refused request is kept
    assert store.queue_length() == 2
    batch = store.claim(2, 30)
    store.complete(batch, [pack(0), pack(0)])
    store.enqueue("b", [pack(3), pack(4)])
    assert store.queue_length() == 2


def test_enqueue_many_refuses_only_the_requests_enqueue_would_refuse(make_store):
    store = make_store(max_queue_length=4)
    outcomes = store.enqueue_many([
        NewRequest("a", [pack(1), pack(2)]),
        NewRequest("too-big", [pack(3), pack(4), pack(5)]),  # 2 + 3 > 4
        NewRequest("c", [pack(6)], stages=2),
        NewRequest("keyed", [pack(7)], idempotency_key="k", fingerprint="f1"),
        NewRequest("repeat", [pack(7)], idempotency_key="k", fingerprint="f1"),  # the same request again
        NewRequest("clash", [pack(8)], idempotency_key="k", fingerprint="f2"),
    ])
    assert outcomes[0] == "a" and outcomes[2] == "c" and outcomes[3:5] == ["keyed", "keyed"]
    assert isinstance(outcomes[1], QueueFullError) and outcomes[1].limit == 4
    assert isinstance(outcomes[5], IdempotencyConflict)
    assert store.result("too-big") is None and store.result("clash") is None
    assert store.queue_length() == 4
    claimed = store.claim(10, 30)
    assert [(i.request_id, unpack(i.payload), i.last_stage) for i in claimed] == [
        ("a", 1, 1), ("a", 2, 1), ("c", 6, 2), ("keyed", 7, 1)]


def test_enqueue_many_wakes_a_waiting_loop(make_store):
    loop, api = make_store(), make_store()
    assert not loop.wait_for_work(0)
    api.enqueue_many([NewRequest("a", [pack(1)]), NewRequest("b", [pack(2)])])
    assert loop.wait_for_work(2)
    assert [i.request_id for i in loop.claim(10, 30)] == ["a", "b"]


def test_expired_lease_is_claimed_again_then_failed_after_max_attempts(make_store):
    clock = FakeClock()
    store = make_store(max_attempts=2, clock=clock)
    store.enqueue("r", [pack("x")])
    assert store.claim(1, lease_s=5)[0].attempts == 1
    clock.now += 4
    assert store.claim(1, lease_s=5) == []  # lease still held
    clock.now += 2
    again = store.claim(1, lease_s=5)
    assert [i.attempts for i in again] == [2]
    clock.now += 6
    assert store.claim(1, lease_s=5) == []
    result = store.result("r")
    assert result.status == FAILED
    assert result.failure.code == ATTEMPTS_EXHAUSTED
    assert "FASTDEPLOY_MAX_ATTEMPTS" in result.failure.message


def test_renewed_lease_is_not_claimed_again(make_store):
    clock = FakeClock()
    store = make_store(clock=clock)
    store.enqueue("r", [pack(1)])
    batch = store.claim(1, lease_s=5)
    clock.now += 4
    store.renew([i.item_id for i in batch], lease_s=5)
    clock.now += 4
    assert store.claim(1, lease_s=5) == []


def test_first_completion_wins(make_store):
    clock = FakeClock()
    store = make_store(clock=clock)
    store.enqueue("r", [pack(1)])
    slow = store.claim(1, lease_s=1)
    clock.now += 2
    fast = store.claim(1, lease_s=1)
    store.complete(fast, [pack("fast")])
    store.complete(slow, [pack("slow")])
    assert outputs_of(store, "r") == ["fast"]


def test_past_deadline_inputs_are_failed_not_claimed(make_store):
    clock = FakeClock()
    store = make_store(clock=clock)
    store.enqueue("late", [pack(1)], deadline=clock.now + 1)
    store.enqueue("live", [pack(2)], deadline=clock.now + 100)
    clock.now += 2
    assert [i.request_id for i in store.claim(10, 30)] == ["live"]
    late = store.result("late")
    assert (late.status, late.failure.code) == (FAILED, DEADLINE_EXCEEDED)


def test_fail_fails_the_whole_request_and_drops_its_other_inputs(make_store):
    store = make_store()
    store.enqueue("r", [pack(1), pack(2)])
    first = store.claim(1, 30)
    store.fail([first[0].request_id], PREDICTOR_FAILED, "boom")
    assert store.claim(10, 30) == []
    assert store.queue_length() == 0
    assert store.result("r").failure.message == "boom"


def test_results_expire_and_are_swept(make_store):
    clock = FakeClock()
    store = make_store(result_ttl_s=10, clock=clock)
    store.enqueue("r", [pack(1)])
    store.complete(store.claim(1, 30), [pack(1)])
    clock.now += 5
    assert store.sweep() == 0
    assert store.result("r").status == DONE
    clock.now += 6
    assert store.result("r") is None
    assert store.sweep() == 1


def test_webhook_is_due_once_finished_and_retried_until_delivered(make_store):
    clock = FakeClock()
    store = make_store(clock=clock)
    store.enqueue("r", [pack(1)], webhook_url="http://127.0.0.1:9/hook")
    assert store.due_webhooks(10, lease_s=30) == []
    store.complete(store.claim(1, 30), [pack(1)])
    jobs = store.due_webhooks(10, lease_s=30)
    assert [(j.request_id, j.attempts) for j in jobs] == [("r", 0)]
    assert store.due_webhooks(10, lease_s=30) == []  # claimed by the first sender
    store.record_webhook("r", delivered=False, error="refused", retry_at=clock.now + 1)
    clock.now += 2
    assert [j.attempts for j in store.due_webhooks(10, lease_s=30)] == [1]
    store.record_webhook("r", delivered=True, error=None, retry_at=None)
    assert store.result("r").webhook.status == "delivered"
    clock.now += 100
    assert store.due_webhooks(10, lease_s=30) == []


def test_unfinished_webhook_keeps_its_result_past_ttl(make_store):
    clock = FakeClock()
    store = make_store(result_ttl_s=1, clock=clock)
    store.enqueue("r", [pack(1)], webhook_url="http://127.0.0.1:9/hook")
    store.complete(store.claim(1, 30), [pack(1)])
    clock.now += 5
    assert store.sweep() == 0


def test_loops_report_heartbeats(make_store):
    store = make_store()
    info = LoopInfo(loop_id="l1", stage=1, pid=1, host="h", batch_size=8, started_at=1.0, heartbeat_at=2.0,
                    tuning=[{"batch_size": 1, "batch_ms": 1.0}])
    store.heartbeat(info)
    assert store.loops() == [info]
    store.remove_loop("l1")
    assert store.loops() == []


def test_wait_for_work_wakes_on_enqueue_from_another_thread(make_store):
    waiter, producer = make_store(), make_store()
    waiter.wait_for_work(0)  # start listening
    threading.Timer(0.05, lambda: producer.enqueue("r", [pack(1)])).start()
    started = time.monotonic()
    assert waiter.wait_for_work(5)
    assert time.monotonic() - started < 4
    assert not waiter.wait_for_work(0.01)


def test_wait_for_results_wakes_on_complete(make_store):
    waiter, loop = make_store(), make_store()
    waiter.wait_for_results(0)
    loop.enqueue("r", [pack(1)])
    loop.complete(loop.claim(1, 30), [pack(1)])
    assert waiter.wait_for_results(5)


def test_a_process_that_stopped_waiting_for_results_is_not_rung_until_it_waits_again(make_store):
    waiter, loop = make_store(), make_store()
    waiter.wait_for_results(0)
    loop.enqueue("while-away", [pack(1)])
    loop.enqueue("after", [pack(2)])
    waiter.stop_waiting_for_results()
    loop.complete(loop.claim(1, 30), [pack(1)])
    assert waiter.wait_for_results(0.05) is None  # listening again from here on
    loop.complete(loop.claim(1, 30), [pack(2)])
    ring = waiter.wait_for_results(5)
    assert ring is not None
    assert [r.request_id for r in ring.results] == ["after"]


def results_rung_until_quiet(waiter, quiet_s: float = 0.05) -> list:
    """Every result the rings carry, from the first ring (within 5 s) until none comes for quiet_s.

    A wait returns what has arrived: the Redis store publishes a message per complete(), and the
    second can reach the waiter's connection after a wait has returned with the first.
    """
    ring = waiter.wait_for_results(5)
    assert ring is not None
    carried = list(ring.results)
    while (ring := waiter.wait_for_results(quiet_s)) is not None:
        carried.extend(ring.results)
    return carried


def test_results_a_ring_carries_are_what_result_reads(make_store):
    waiter, loop = make_store(), make_store()
    waiter.wait_for_results(0)
    loop.enqueue("whole", [pack(1), pack(2)], webhook_url="http://127.0.0.1:9/hook")
    loop.enqueue("split", [pack(3), pack(4)])
    first = loop.claim(3, 30)  # both inputs of "whole", the first of "split"
    loop.complete(first, [pack(item.index) for item in first])
    rest = loop.claim(1, 30)
    loop.complete(rest, [pack(item.index) for item in rest])
    carried = results_rung_until_quiet(waiter)
    assert "whole" in [result.request_id for result in carried]
    for result in carried:
        assert result == loop.result(result.request_id)


def test_a_finished_result_rings_with_its_outputs(make_store):
    waiter, loop = make_store(), make_store()
    waiter.wait_for_results(0)
    loop.enqueue("whole", [pack("a"), pack("b")])
    loop.enqueue("split", [pack("c"), pack("d")])
    loop.complete(loop.claim(3, 30), [pack("A"), pack("B"), pack("C")])
    ring = waiter.wait_for_results(5)
    assert [(r.request_id, [unpack(o) for o in r.outputs]) for r in ring.results] == [("whole", ["A", "B"])]
    loop.complete(loop.claim(1, 30), [pack("D")])
    # "split" finished with an output from each call: a store may carry it (Redis reads both back) or not
    ring = waiter.wait_for_results(5)
    assert [r for r in ring.results if r != loop.result(r.request_id)] == []
    assert waiter.finished(["split"]) == {"split"}


def test_a_late_loop_never_rings_a_result_the_store_did_not_keep(make_store):
    clock = FakeClock()
    waiter, late, rescuer = make_store(clock=clock), make_store(clock=clock), make_store(clock=clock)
    waiter.wait_for_results(0)
    waiter.enqueue("r", [pack("x")])
    held_too_long = late.claim(1, lease_s=1)
    clock.now += 2
    claimed_again = rescuer.claim(1, lease_s=30)
    late.complete(held_too_long, [pack("late")])  # first completion wins, lease or not
    rescuer.complete(claimed_again, [pack("rescuer")])
    assert outputs_of(waiter, "r") == ["late"]
    rung = results_rung_until_quiet(waiter)
    assert [unpack(o) for r in rung for o in r.outputs] in (["late"], [])


def complete_noting_what_the_waiter_holds(loop: LocalStore, waiter: LocalStore, items, outputs):
    """Complete on the loop's store; return what the waiter had been rung when the commit began."""
    held, commit = [], loop.db.transaction
    loop.db.transaction = lambda: held.append(waiter.wait_for_results(0)) or commit()
    try:
        loop.complete(items, outputs)
    finally:
        loop.db.transaction = commit
    assert len(held) == 1  # complete() is one transaction
    return held[0]


def test_the_local_store_hands_a_result_to_its_waiter_before_committing_it(tmp_path):
    waiter, loop = LocalStore(tmp_path), LocalStore(tmp_path)
    waiter.wait_for_results(0)
    waiter.enqueue("whole", [pack(1), pack(2)])
    waiter.enqueue("split", [pack(3), pack(4)])
    held = complete_noting_what_the_waiter_holds(loop, waiter, loop.claim(3, 30), [pack("A"), pack("B"), pack("C")])
    assert [(r.request_id, [unpack(o) for o in r.outputs]) for r in held.results] == [("whole", ["A", "B"])]
    assert held.results[0] == waiter.result("whole")
    assert waiter.wait_for_results(0.01) is None  # nothing more to say: "split" is not finished
    held = complete_noting_what_the_waiter_holds(loop, waiter, loop.claim(1, 30), [pack("D")])
    assert held is None  # "split" finished over two batches: rung once committed
    assert waiter.wait_for_results(5) is not None
    assert waiter.finished(["split"]) == {"split"}
    waiter.close()
    loop.close()


def test_a_streamed_request_is_rung_once_its_result_is_committed(tmp_path):
    waiter, loop = LocalStore(tmp_path), LocalStore(tmp_path)
    waiter.wait_for_results(0)
    waiter.enqueue("streamed", [pack("a")])
    batch = loop.claim(1, 30)
    loop.add_chunks(batch, [pack("a-1")])
    assert waiter.wait_for_results(5) is not None  # the chunk's ring
    held = complete_noting_what_the_waiter_holds(loop, waiter, batch, [pack("A")])
    assert held is None  # its stream reads the store, so a ring before the commit would find it unfinished
    assert waiter.wait_for_results(5) is not None
    assert waiter.finished(["streamed"]) == {"streamed"}
    waiter.close()
    loop.close()


def test_a_loop_keeps_no_mark_of_a_streamed_request_once_its_batch_is_completed(tmp_path):
    """Even when another loop finished the request first (this one's lease had lapsed): a loop
    process lives long, and one id kept per such request would grow without bound."""
    clock = FakeClock()
    late, rescuer = LocalStore(tmp_path, clock=clock), LocalStore(tmp_path, clock=clock)
    late.enqueue("streamed", [pack("a")])
    held_too_long = late.claim(1, lease_s=1)
    late.add_chunks(held_too_long, [pack("a-1")])
    clock.now += 2
    rescuer.complete(rescuer.claim(1, lease_s=30), [pack("A")])
    late.complete(held_too_long, [pack("late")])
    assert late._streamed == set()
    assert outputs_of(late, "streamed") == ["A"]
    late.close()
    rescuer.close()


def test_results_too_large_for_a_ring_are_left_for_the_waiter_to_read(make_store):
    waiter, loop = make_store(), make_store()
    waiter.wait_for_results(0)
    loop.enqueue("big", [pack(1)])
    loop.complete(loop.claim(1, 30), [pack("x" * MAX_RING_BYTES)])
    assert waiter.wait_for_results(5).results == ()
    assert outputs_of(waiter, "big") == ["x" * MAX_RING_BYTES]


def test_a_doorbell_ring_that_does_not_decode_counts_as_a_plain_ring(tmp_path):
    waiter, loop = LocalStore(tmp_path), LocalStore(tmp_path)
    waiter.wait_for_results(0)
    loop.doorbells.ring("results", b"\x93not a list of results")  # any local process can ring
    assert waiter.wait_for_results(5).results == ()
    waiter.close()
    loop.close()


def open_backend(spec: tuple):
    """A store from a picklable description, for child processes: ("local", folder) or ("redis", url, namespace)."""
    if spec[0] == "redis":
        from fastdeploy.store.redis import RedisStore

        return RedisStore(spec[1], spec[2])
    return LocalStore(spec[1])


def _produce(spec, worker: int, requests: int) -> None:
    store = open_backend(spec)
    for n in range(requests):
        store.enqueue(f"p{worker}-{n}", [pack([worker, n]), pack([worker, n, "second"])])


def _consume(spec, results) -> None:
    store = open_backend(spec)
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 2:
        batch = store.claim(7, lease_s=30)
        if not batch:
            store.wait_for_work(0.05)
            continue
        idle_since = time.monotonic()
        store.complete(batch, [item.payload for item in batch])
        results.extend([item.item_id for item in batch])


@pytest.fixture(params=["local", "redis"])
def backend_spec(request, tmp_path):
    if request.param == "redis":
        return ("redis", *request.getfixturevalue("redis_namespace"))
    LocalStore(tmp_path / "store").close()
    return ("local", tmp_path / "store")


def test_concurrent_producers_and_consumers_across_processes(backend_spec):
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        claimed = manager.list()
        producers = [context.Process(target=_produce, args=(backend_spec, w, 150)) for w in range(3)]
        consumers = [context.Process(target=_consume, args=(backend_spec, claimed)) for _ in range(3)]
        for process in producers + consumers:
            process.start()
        for process in producers + consumers:
            process.join(timeout=120)
            assert process.exitcode == 0
        claimed = list(claimed)
    assert len(claimed) == len(set(claimed)) == 3 * 150 * 2  # every input claimed exactly once
    store = open_backend(backend_spec)
    for worker in range(3):
        for n in range(150):
            assert outputs_of(store, f"p{worker}-{n}") == [[worker, n], [worker, n, "second"]]
    assert store.queue_length() == 0
    store.close()


def test_idempotency_key_holds_while_the_result_lives(make_store):
    clock = FakeClock()
    store = make_store(result_ttl_s=10, clock=clock)
    assert store.enqueue("first", [pack(1)], idempotency_key="k", fingerprint="f1") == "first"
    assert store.enqueue("second", [pack(1)], idempotency_key="k", fingerprint="f1") == "first"
    with pytest.raises(IdempotencyConflict):
        store.enqueue("third", [pack(2)], idempotency_key="k", fingerprint="f2")
    assert store.queue_length() == 1
    store.complete(store.claim(1, 30), [pack(1)])
    clock.now += 11  # the result expired: the key is free again
    assert store.enqueue("fourth", [pack(2)], idempotency_key="k", fingerprint="f2") == "fourth"


def test_redis_callers_beyond_the_connection_pool_wait_instead_of_failing(redis_namespace):
    from fastdeploy.store.redis import RedisStore

    store = RedisStore(*redis_namespace, max_connections=2)
    errors = []

    def submit(worker: int) -> None:
        try:
            for n in range(20):
                store.enqueue(f"w{worker}-{n}", [pack(n)])
        except Exception as exc:  # noqa: BLE001 - any failure is what this test counts
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert store.queue_length() == 16 * 20
    store.close()


def write_older_layout(folder, queued: int) -> None:
    """A store as an earlier fastdeploy left it on tmpfs: items without stage columns."""
    import sqlite3

    folder.mkdir(parents=True)
    with sqlite3.connect(folder / "queue.db") as db:
        db.execute("CREATE TABLE items (item_id INTEGER PRIMARY KEY, request_id TEXT, idx INTEGER, "
                   "status INTEGER, payload BLOB, output BLOB)")
        db.executemany("INSERT INTO items (request_id, idx, status) VALUES (?, 0, ?)",
                       [("old-done", 2)] + [(f"old-{n}", 0) for n in range(queued)])


def test_a_drained_store_of_another_version_starts_afresh(tmp_path):
    write_older_layout(tmp_path / "store", queued=0)
    store = LocalStore(tmp_path / "store")
    store.enqueue("new", [pack(1)])
    store.complete(store.claim(1, 30), [pack(2)])
    assert outputs_of(store, "new") == [2]
    store.close()


def test_a_store_of_another_version_with_work_left_is_refused_not_dropped(tmp_path):
    from fastdeploy.store.sqlite import IncompatibleStoreError

    write_older_layout(tmp_path / "store", queued=3)
    with pytest.raises(IncompatibleStoreError, match="3 unfinished inputs.*delete the folder"):
        LocalStore(tmp_path / "store")
    import sqlite3

    with sqlite3.connect(tmp_path / "store" / "queue.db") as db:
        assert db.execute("SELECT COUNT(*) FROM items WHERE status = 0").fetchone()[0] == 3


def test_redis_delete_all_drops_one_namespace_only(redis_namespace):
    from fastdeploy.store.redis import RedisStore

    url, namespace = redis_namespace
    mine, other = RedisStore(url, namespace), RedisStore(url, namespace + "-other")
    try:
        mine.enqueue("a", [pack(1)])
        other.enqueue("b", [pack(2)])
        assert mine.delete_all() > 0
        assert mine.result("a") is None and mine.queue_length() == 0
        assert other.result("b").status == PENDING and other.queue_length() == 1
    finally:
        other.delete_all()
        mine.close()
        other.close()
