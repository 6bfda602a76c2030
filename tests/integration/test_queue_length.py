"""queue_length() against a model of every input's fate, over random sequences of store operations.

The embedded store keeps the count in a row updated by each write (counting rows made
an enqueue cost 0.4 ms at 10,000 queued); Redis keeps a counter too. Either drifts if
one path that finishes, fails or re-queues inputs forgets to say so: this finds it.
"""

from __future__ import annotations

import itertools
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastdeploy.store.base import PENDING
from fastdeploy.store.codec import pack
from fastdeploy.store.local import LocalStore
from tests.conftest import redis_url
from tests.integration.test_store_contract import FakeClock

MAX_ATTEMPTS = 2
LEASE_S = 5.0

operations = st.lists(st.one_of(
    st.tuples(st.just("enqueue"), st.integers(1, 3), st.integers(1, 2)),  # inputs, stages
    st.tuples(st.just("claim"), st.integers(1, 4)),
    st.tuples(st.just("complete"), st.integers(0, 2**16)),  # which of the claimed batches, and which items
    st.tuples(st.just("fail"), st.integers(0, 2**16)),
    st.tuples(st.just("expire_leases")),
), max_size=25)


class Model:
    """What the queue should hold: per request, its inputs not yet through the last stage."""

    def __init__(self) -> None:
        self.unfinished: dict[str, int] = {}
        self.pending: set[str] = set()
        self.stage: dict[int, int] = {}  # item -> its current stage
        self.done: set[int] = set()
        self.leases: dict[int, tuple[str, int]] = {}  # claimed items -> (request, attempts)

    def completed(self, item) -> None:
        if item.request_id not in self.pending or item.item_id in self.done:
            return
        if self.stage.get(item.item_id, 1) != item.stage:
            return
        self.leases.pop(item.item_id, None)
        if item.stage < item.last_stage:
            self.stage[item.item_id] = item.stage + 1
            return
        self.done.add(item.item_id)
        self.unfinished[item.request_id] -= 1
        if not self.unfinished[item.request_id]:
            self.pending.discard(item.request_id)

    def failed(self, request_id: str) -> None:
        if request_id in self.pending:
            self.pending.discard(request_id)
            self.unfinished[request_id] = 0

    def leases_expired(self) -> None:
        """What the next claim does first: re-queue expired inputs, fail those claimed too often."""
        for item_id, (request_id, attempts) in list(self.leases.items()):
            del self.leases[item_id]
            if attempts >= MAX_ATTEMPTS:
                self.failed(request_id)

    def expected(self) -> int:
        return sum(self.unfinished[r] for r in self.pending)


@pytest.fixture(params=["local", "redis"])
def new_store(request, tmp_path):
    """Build an empty store of one backend per call: each example starts from nothing."""
    made = []

    def make(**options):
        if request.param == "redis":
            from fastdeploy.store.redis import RedisStore

            store = RedisStore(redis_url(), f"test-{uuid.uuid4().hex}", **options)
        else:
            store = LocalStore(tmp_path / uuid.uuid4().hex, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        if request.param == "redis":
            store.delete_all()
        store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_queue_length_follows_every_input_through_the_store(new_store, steps):
    clock = FakeClock()
    store = new_store(max_attempts=MAX_ATTEMPTS, clock=clock)
    names = (f"r{n}" for n in itertools.count())
    model, batches, expiring = Model(), [], False
    for step in steps:
        if step[0] == "enqueue":
            request_id = next(names)
            store.enqueue(request_id, [pack(i) for i in range(step[1])], stages=step[2])
            model.unfinished[request_id] = step[1]
            model.pending.add(request_id)
        elif step[0] == "claim":
            if expiring:
                model.leases_expired()
                expiring = False
            batch = store.claim(step[1], LEASE_S)
            for item in batch:
                model.leases[item.item_id] = (item.request_id, item.attempts)
            batches.append(batch)
        elif step[0] == "complete" and batches:
            batch = batches[step[1] % len(batches)]
            chosen = [item for n, item in enumerate(batch) if step[1] >> (n % 16) & 1] or batch
            store.complete(chosen, [pack("out")] * len(chosen))
            for item in chosen:
                model.completed(item)
        elif step[0] == "fail" and model.unfinished:
            request_id = sorted(model.unfinished)[step[1] % len(model.unfinished)]
            store.fail([request_id], "cancelled", "by the test")
            model.failed(request_id)
        elif step[0] == "expire_leases":
            clock.now += LEASE_S + 1
            expiring = True
        assert store.queue_length() == model.expected(), step
    for request_id in model.unfinished:
        assert (store.result(request_id).status == PENDING) == (request_id in model.pending)
