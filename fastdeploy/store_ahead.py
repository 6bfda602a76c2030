"""Claim the next batch and write the last one's results while the predictor runs.

At full load a loop would otherwise stop its predictor for every claim (about
0.7 ms for 32 inputs on tmpfs) and every write of results (about 1 ms): 3 % of
a 52 ms batch, and more against a remote Redis. One thread does both, in the
order asked, so a write and a claim never contend with each other for the
store; the predictor keeps the loop's main thread.

It is used only when it pays (the loop decides). The next batch is claimed
ahead only after a full batch (the queue held a batch or more, so more is
likely waiting), once the loop has timed a batch, only when the predictor
leaves its CPU mostly idle (a GPU, a remote model, I/O; beside a CPU-bound
predictor this work takes cores and memory bandwidth from it and from the
API), and shortly before the predictor is expected to finish, so a second
loop that is idle is not robbed of work.
Results are written behind only when that claim came back full, so there is a
next batch to overlap with. Otherwise the loop claims and writes on its own
thread as before: a lone caller's answer never waits for a hand-off.
"""

from __future__ import annotations

import logging
import threading
import time

from fastdeploy.store.base import QueueItem, Store

log = logging.getLogger(__name__)

FIRST_CLAIM_S = 0.001  # how long a claim takes, until one has been timed
WAKE_UP_S = 0.0005  # what the thread needs to wake up and start a claim


class StoreAhead:
    """The loop's second thread: one claim ahead, one write behind, at most."""

    def __init__(self, store: Store, stage: int, lease_s: float) -> None:
        self.store = store
        self.stage = stage
        self.lease_s = lease_s
        self._cond = threading.Condition()
        self._claim_due: float | None = None  # time.monotonic() at which to claim
        self._claim_size = 0
        self._claiming = False
        self._claimed: list[QueueItem] = []
        self._writing: tuple[list[QueueItem], list[bytes]] | None = None
        self._claim_s = FIRST_CLAIM_S
        self._closed = False
        self._thread: threading.Thread | None = None

    def claim_before(self, done_at: float, max_items: int) -> None:
        """Hold up to max_items claimed (counting any not yet taken) by done_at, a time.monotonic() time."""
        with self._cond:
            self._claim_due = done_at - 2 * self._claim_s - WAKE_UP_S
            self._claim_size = max_items
            self._start()
            self._cond.notify_all()

    def settle(self) -> int:
        """How many inputs are claimed ahead, once a claim under way ends; a claim not yet started is dropped."""
        with self._cond:
            self._claim_due = None
            while self._claiming:
                self._cond.wait()
            return len(self._claimed)

    def take(self) -> list[QueueItem]:
        """The inputs claimed ahead, now the caller's to serve."""
        with self._cond:
            self.settle()
            items, self._claimed = self._claimed, []
            return items

    def write(self, batch: list[QueueItem], outputs: list[bytes]) -> None:
        """Store a batch's results on the thread, after the previous write has ended."""
        with self._cond:
            self._wait_for_write()
            self._writing = (batch, outputs)
            self._start()
            self._cond.notify_all()

    def flush(self) -> None:
        """Return once every write handed over has ended."""
        with self._cond:
            self._wait_for_write()

    def held_ids(self) -> list[int]:
        """Items claimed ahead or being written: their leases must be renewed like the running batch's."""
        with self._cond:
            writing = self._writing[0] if self._writing is not None else []
            return [item.item_id for item in writing + self._claimed]

    def close(self) -> None:
        """Stop the thread after its current job; results not yet written stay leased and are served again."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)

    def _wait_for_write(self) -> None:
        while self._writing is not None:
            self._cond.wait()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work_forever, name="store-ahead", daemon=True)
            self._thread.start()

    def _next_job(self) -> str | None:
        """Under the lock: "write", "claim", or None once closed. A write never waits behind a claim."""
        while not self._closed:
            if self._writing is not None:
                return "write"
            if self._claim_due is None:
                self._cond.wait()
                continue
            wait_s = self._claim_due - time.monotonic()
            if wait_s <= 0:
                self._claim_due, self._claiming = None, True
                return "claim"
            self._cond.wait(wait_s)
        return None

    def _work_forever(self) -> None:
        while True:
            with self._cond:
                job = self._next_job()
                if job is None:
                    return
                writing, claim_size = self._writing, self._claim_size - len(self._claimed)
            claimed = []
            started = time.monotonic()
            try:
                if job == "write":
                    self.store.complete(*writing)
                elif claim_size > 0:
                    claimed = self.store.claim(claim_size, self.lease_s, self.stage)
            except Exception:
                # Nothing is lost: unwritten results stay leased and are served again when the lease
                # expires, as when the loop's own write fails; a failed claim took nothing, and the
                # loop's next claim meets the same error and backs off.
                log.exception("store-ahead: %s failed", "writing results" if job == "write" else "claiming")
            with self._cond:
                if job == "write":
                    self._writing = None
                else:
                    self._claimed += claimed
                    self._claiming = False
                    if claim_size > 0:
                        self._claim_s = time.monotonic() - started
                self._cond.notify_all()
