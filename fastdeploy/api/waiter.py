"""Wake the requests waiting on /sync when their results land, without each one polling.

One poller per API worker sleeps until the store rings "results" (or a
backstop interval passes), hands each waiting request the result the ring
carried for it, and asks the store which of the others finished: a request
answered from the ring costs no read of the store at all.
Under gevent the poller is a greenlet and ``threading`` is patched, so a
worker holding a thousand waiting requests still does one query per ring.
Streams register as watchers instead: they are woken on every ring, since
a ring may carry a new chunk for them.
"""

from __future__ import annotations

import logging
import threading
import time

from fastdeploy.store.base import RequestResult, ResultsRing, Store, StoreClosedError

log = logging.getLogger(__name__)

BACKSTOP_S = 0.25  # re-check even without a ring: results can also be written by another host's store
IDLE_EXIT_S = 1.0


class ResultWaiter:
    def __init__(self, store: Store, *, idle_exit_s: float = IDLE_EXIT_S) -> None:
        self.store = store
        self.idle_exit_s = idle_exit_s
        self._finish_events: dict[str, threading.Event] = {}
        self._carried: dict[str, RequestResult] = {}  # results rung for requests still waiting
        self._change_events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self.rings = 0  # how many times the poller woke; streams read it before reading chunks
        self._closed = False

    def wait(self, request_id: str, timeout_s: float) -> RequestResult | None:
        """The request's result once it finished; None when it expired before it could be read.

        Raises TimeoutError when it did not finish within timeout_s.
        """
        try:
            finished = self._wait(self._finish_events, request_id, timeout_s)
        finally:
            with self._lock:
                carried = self._carried.pop(request_id, None)
        if not finished:
            raise TimeoutError(f"request {request_id} did not finish within {timeout_s}s")
        return carried if carried is not None else self.store.result(request_id)

    def wait_for_change(self, request_id: str, timeout_s: float, since: int) -> bool:
        """True when the store may have new chunks or a result for the request within timeout_s.

        ``since`` is the value of ``rings`` read before the caller last read the store,
        so a ring that came in between is not missed.
        """
        return self._wait(self._change_events, request_id, timeout_s, since)

    def _wait(self, events: dict[str, threading.Event], request_id: str, timeout_s: float,
              since: int | None = None) -> bool:
        event = threading.Event()
        with self._lock:
            if since is not None and since != self.rings:
                return True
            events[request_id] = event
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll_forever, name="result-waiter", daemon=True)
                self._poller.start()
        try:
            return event.wait(timeout_s)
        finally:
            with self._lock:
                events.pop(request_id, None)

    def _poll_forever(self) -> None:
        """Poll while anyone waits, and a little longer, so a stream between two waits keeps it."""
        idle_since = None
        wait_s = 0.0  # first listen (taking what was rung already), then ask the store about every
        while True:   # waiter: a result written between the two is rung, not missed
            with self._lock:
                if self._closed:
                    self._poller = None
                    return
                if self._finish_events or self._change_events:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.idle_exit_s:
                    self._stop_listening()
                    self._poller = None
                    return
            try:
                self._release(self.store.wait_for_results(wait_s))
                wait_s = BACKSTOP_S
            except StoreClosedError:
                with self._lock:
                    self._poller = None
                return
            except Exception:
                log.exception("waiter: waiting for results failed; polling instead")
                time.sleep(BACKSTOP_S)

    def _stop_listening(self) -> None:
        """Leave the results rings while idle (under the lock, so a poller starting anew listens after)."""
        try:
            self.store.stop_waiting_for_results()
        except Exception:
            log.warning("waiter: could not stop listening for results", exc_info=True)

    def close(self) -> None:
        """Stop the poller (before the store it reads is closed)."""
        with self._lock:
            self._closed = True
            poller = self._poller
        if poller is not None:
            poller.join(timeout=2 * BACKSTOP_S)

    def _release(self, ring: ResultsRing | None) -> None:
        carried = {result.request_id: result for result in ring.results} if ring is not None else {}
        with self._lock:
            self.rings += 1
            for event in self._change_events.values():
                event.set()
            for request_id, result in carried.items():
                event = self._finish_events.get(request_id)
                if event is not None:
                    self._carried[request_id] = result
                    event.set()
            unanswered = [request_id for request_id in self._finish_events if request_id not in carried]
        if not unanswered:
            return
        try:
            done = self.store.finished(unanswered)
        except StoreClosedError:
            raise
        except Exception:
            log.exception("waiter: could not read finished requests")
            return
        with self._lock:
            for request_id in done:
                event = self._finish_events.get(request_id)
                if event is not None:
                    event.set()
