"""Wake the requests waiting on /sync when their results land, without each one polling.

One poller per API worker asks the store which waiting requests finished,
then sleeps until the store rings "results" (or a backstop interval passes).
Under gevent the poller is a greenlet and ``threading`` is patched, so a
worker holding a thousand waiting requests still does one query per ring.
"""

from __future__ import annotations

import logging
import threading
import time

from fastdeploy.store.base import Store

log = logging.getLogger(__name__)

BACKSTOP_S = 0.25  # re-check even without a ring: results can also be written by another host's store


class ResultWaiter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._poller: threading.Thread | None = None

    def wait(self, request_id: str, timeout_s: float) -> bool:
        """True when the request finished within timeout_s."""
        event = threading.Event()
        with self._lock:
            self._events[request_id] = event
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll_forever, name="result-waiter", daemon=True)
                self._poller.start()
        try:
            return event.wait(timeout_s)
        finally:
            with self._lock:
                self._events.pop(request_id, None)

    def _poll_forever(self) -> None:
        """Poll while anyone waits; the next wait() starts a new poller."""
        while True:
            with self._lock:
                if not self._events:
                    self._poller = None
                    return
            self._release_finished()
            try:
                self.store.wait_for_results(BACKSTOP_S)
            except Exception:
                log.exception("waiter: waiting for results failed; polling instead")
                time.sleep(BACKSTOP_S)

    def _release_finished(self) -> None:
        with self._lock:
            waiting = list(self._events)
        if not waiting:
            return
        try:
            done = self.store.finished(waiting)
        except Exception:
            log.exception("waiter: could not read finished requests")
            return
        with self._lock:
            for request_id in done:
                event = self._events.get(request_id)
                if event is not None:
                    event.set()
