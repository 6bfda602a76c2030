"""Requests submitted together are queued in one transaction, and each gets its own outcome."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time

from fastdeploy.api.group_commit import GroupCommit
from fastdeploy.store.base import NewRequest, QueueFullError, StoreClosedError
from fastdeploy.store.codec import pack
from fastdeploy.store.local import LocalStore


class CountingStore(LocalStore):
    """A real local store that remembers the size of every group it was asked to queue."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.groups: list[int] = []

    def enqueue_many(self, requests):
        self.groups.append(len(requests))
        return super().enqueue_many(requests)


def gather_until(group_commit: GroupCommit, members: int):
    """A gather step that returns once that many submissions wait (bounded, so a bug fails, not hangs)."""
    def gather() -> None:
        give_up_at = time.monotonic() + 5
        while len(group_commit._waiting) < members and time.monotonic() < give_up_at:
            time.sleep(0.001)
    return gather


def submit_in_threads(group_commit: GroupCommit, requests: list[NewRequest]) -> dict[str, object]:
    outcomes: dict[str, object] = {}

    def submit(request: NewRequest) -> None:
        try:
            outcomes[request.request_id] = group_commit.enqueue(request)
        except BaseException as exc:
            outcomes[request.request_id] = exc

    threads = [threading.Thread(target=submit, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def test_requests_submitted_together_are_queued_in_one_transaction(tmp_path):
    store = CountingStore(tmp_path / "q")
    group_commit = GroupCommit(store)
    group_commit.gather = gather_until(group_commit, 5)
    outcomes = submit_in_threads(group_commit, [NewRequest(f"r{n}", [pack(n)]) for n in range(5)])
    assert outcomes == {f"r{n}": f"r{n}" for n in range(5)}
    assert store.groups == [5]
    assert sorted(item.request_id for item in store.claim(10, 30)) == [f"r{n}" for n in range(5)]


def test_a_refused_request_fails_alone(tmp_path):
    store = CountingStore(tmp_path / "q", max_queue_length=3)
    group_commit = GroupCommit(store)
    group_commit.gather = gather_until(group_commit, 3)
    outcomes = submit_in_threads(group_commit, [NewRequest("small", [pack(1)]),
                                                NewRequest("big", [pack(2), pack(3), pack(4)]),
                                                NewRequest("other", [pack(5)])])
    assert store.groups == [3]
    assert (outcomes["small"], outcomes["other"]) == ("small", "other")
    assert isinstance(outcomes["big"], QueueFullError)  # whichever order they joined in, big cannot fit
    assert store.queue_length() == 2


def test_a_failed_transaction_fails_every_member(tmp_path):
    store = CountingStore(tmp_path / "q")
    group_commit = GroupCommit(store)
    group_commit.gather = gather_until(group_commit, 3)
    store.close()
    outcomes = submit_in_threads(group_commit, [NewRequest(f"r{n}", [pack(n)]) for n in range(3)])
    assert all(isinstance(outcome, StoreClosedError) for outcome in outcomes.values())


def test_a_leader_interrupted_while_gathering_still_queues_the_others(tmp_path):
    store = CountingStore(tmp_path / "q")
    group_commit = GroupCommit(store)
    waiting_for_others = gather_until(group_commit, 2)

    def interrupted_gather() -> None:
        waiting_for_others()
        raise KeyboardInterrupt  # as GreenletExit would be: a BaseException in the leader

    group_commit.gather = interrupted_gather
    outcomes = submit_in_threads(group_commit, [NewRequest("a", [pack(1)]), NewRequest("b", [pack(2)])])
    assert sorted(map(type, outcomes.values()), key=str) == sorted([str, KeyboardInterrupt], key=str)
    assert store.groups == [2] and store.queue_length() == 2  # the leader's own request was queued too


def test_alone_a_request_is_queued_at_once(tmp_path):
    store = CountingStore(tmp_path / "q")
    group_commit = GroupCommit(store)
    assert [group_commit.enqueue(NewRequest(f"r{n}", [pack(n)])) for n in range(3)] == ["r0", "r1", "r2"]
    assert store.groups == [1, 1, 1]


def test_under_gevent_greenlets_that_submit_in_one_turn_share_a_transaction(tmp_path):
    """The API's own setting: a patched process, the default gather (one yield), greenlets."""
    script = textwrap.dedent(f"""
        from gevent import monkey
        monkey.patch_all()
        import json, gevent
        from fastdeploy.api.group_commit import GroupCommit
        from fastdeploy.store.base import NewRequest
        from fastdeploy.store.local import LocalStore

        groups = []
        class Counting(LocalStore):
            def enqueue_many(self, requests):
                groups.append(len(requests))
                return super().enqueue_many(requests)

        store = Counting({str(tmp_path / "q")!r})
        group_commit = GroupCommit(store)
        jobs = [gevent.spawn(group_commit.enqueue, NewRequest(f"r{{n}}", [b"\\x01"])) for n in range(6)]
        gevent.joinall(jobs, timeout=10)
        print(json.dumps([groups, [job.value for job in jobs], store.queue_length()]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    groups, ids, queued = json.loads(done.stdout)
    assert (groups, ids, queued) == ([6], [f"r{n}" for n in range(6)], 6)
