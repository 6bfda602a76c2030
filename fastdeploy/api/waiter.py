"""Wake the requests waiting on /sync when their results land, without each one polling.

One poller per API worker asks the store which waiting requests finished,
then sleeps until the store rings "results" (or a backstop interval passes).
Under gevent the poller is a greenlet and ``threading`` is patched, so a
worker holding a thousand waiting requests still does one query per ring.
Streams register as watchers instead: they are woken on every ring, since
a ring may carry a new chunk for them.
"""

from __future__ import annotations

import logging
import threading
import time

from fastdeploy.store.base import Store, StoreClosedError

log = logging.getLogger(__name__)

BACKSTOP_S = 0.25  # re-check even without a ring: results can also be written by another host's store
IDLE_EXIT_S = 1.0


class ResultWaiter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._finish_events: dict[str, threading.Event] = {}
        self._change_events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self.rings = 0  # how many times the poller woke; streams read it before reading chunks
        self._closed = False

    def wait(self, request_id: str, timeout_s: float) -> bool:
        """True when the request finished within timeout_s."""
        return self._wait(self._finish_events, request_id, timeout_s)

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
        while True:
            with self._lock:
                if self._closed:
                    self._poller = None
                    return
                if self._finish_events or self._change_events:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > IDLE_EXIT_S:
                    self._poller = None
                    return
            try:
                self._release()
                self.store.wait_for_results(BACKSTOP_S)
            except StoreClosedError:
                with self._lock:
                    self._poller = None
                return
            except Exception:
                log.exception("waiter: waiting for results failed; polling instead")
                time.sleep(BACKSTOP_S)

    def close(self) -> None:
        """Stop the poller (before the store it reads is closed)."""
        with self._lock:
            self._closed = True
            poller = self._poller
        if poller is not None:
            poller.join(timeout=2 * BACKSTOP_S)

    def _release(self) -> None:
        with self._lock:
            self.rings += 1
            waiting = list(self._finish_events)
            for event in self._change_events.values():
                event.set()
        if not waiting:
            return
        try:
            done = self.store.finished(waiting)
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
