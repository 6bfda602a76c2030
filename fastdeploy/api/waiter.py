"""Wake the requests waiting on /sync when their results land, without each one polling.

One poller per API worker watches the store's result signal (a word in
shared memory) and, only when it changes, asks the store which of the
waiting requests finished. Under gevent the poller is a greenlet and
``threading`` is patched, so this costs one cheap read every 0.1-2 ms while
requests wait and nothing while none do.
"""

from __future__ import annotations

import logging
import threading
import time

from fastdeploy.store.base import Store

log = logging.getLogger(__name__)

FAST_POLL_S = 0.0001
SLOW_POLL_S = 0.002
BACKSTOP_S = 0.25  # re-check the store even without a signal, in case one was missed


class ResultWaiter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._poller: threading.Thread | None = None

    def wait(self, request_id: str, timeout_s: float) -> bool:
        """True when the request finished within timeout_s."""
        event = threading.Event()
        with self._lock:
            self._events[request_id] = event
            if self._poller is None or not self._poller.is_alive():
                self._poller = threading.Thread(target=self._poll_forever, name="result-waiter", daemon=True)
                self._poller.start()
        self._wake.set()
        try:
            return event.wait(timeout_s)
        finally:
            with self._lock:
                self._events.pop(request_id, None)

    def _poll_forever(self) -> None:
        seen, checked_at, pause = None, 0.0, FAST_POLL_S
        while True:
            if not self._events:
                self._wake.clear()
                self._wake.wait(1.0)
                continue
            signal = self.store.result_signal()
            if signal != seen or self._wake.is_set() or time.monotonic() - checked_at > BACKSTOP_S:
                self._wake.clear()
                seen, checked_at = signal, time.monotonic()
                self._release_finished()
                pause = FAST_POLL_S
            else:
                pause = min(pause * 1.5, SLOW_POLL_S)
            time.sleep(pause)

    def _release_finished(self) -> None:
        with self._lock:
            waiting = list(self._events)
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
