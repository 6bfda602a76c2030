"""Wake waiting processes the moment the store changes, without polling.

A process that waits (a loop for work, an API worker for results) listens on
a Unix datagram socket and registers it as an empty file under
``<store>/bells/<role>.<token>``. A writer rings a role by sending one byte to
every registered socket. Datagrams that arrive while nobody waits stay
buffered, so a ring between "check the store" and "wait" is never lost, and a
full buffer already means "wake up". Cost: one ``listdir`` and one
``sendto`` per listener; an idle waiter costs nothing.

On Linux the sockets live in the abstract namespace (no path length limit,
gone when the process dies); elsewhere they are files in the temp folder.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

ABSTRACT = sys.platform.startswith("linux")


def _address(token: str) -> str | bytes:
    if ABSTRACT:
        return b"\0fastdeploy-bell-" + token.encode()
    return str(Path(tempfile.gettempdir()) / f"fastdeploy-bell-{token}")


class Bell:
    """The listening end: one per waiting role per process."""

    def __init__(self, folder: Path, role: str) -> None:
        token = uuid.uuid4().hex
        self._address = _address(token)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self._address)
        self._registration = folder / f"{role}.{token}"
        self._registration.touch()

    def wait(self, timeout_s: float) -> bool:
        """True when rung (since the last wait) within timeout_s; swallows all pending rings."""
        self._sock.settimeout(max(timeout_s, 0.0))
        try:
            self._sock.recv(16)
        except (socket.timeout, BlockingIOError):
            return False
        self._sock.setblocking(False)
        try:
            while True:
                self._sock.recv(16)
        except (BlockingIOError, socket.timeout):
            return True

    def close(self) -> None:
        self._registration.unlink(missing_ok=True)
        self._sock.close()
        if not ABSTRACT:
            Path(self._address).unlink(missing_ok=True)


class Doorbells:
    """Ring and listen for named roles ("work", "results") of one store folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "bells"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sender: socket.socket | None = None

    def listen(self, role: str) -> Bell:
        return Bell(self.folder, role)

    def ring(self, role: str) -> None:
        prefix = role + "."
        for name in os.listdir(self.folder):
            if name.startswith(prefix):
                self._send(name, name[len(prefix):])

    def _send(self, name: str, token: str) -> None:
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        try:
            self._sender.sendto(b"!", _address(token))
        except BlockingIOError:
            pass  # its buffer is full of rings it has not read: it will wake anyway
        except (ConnectionRefusedError, FileNotFoundError):
            log.debug("doorbell: %s has no listener (its process died); removing it", name)
            (self.folder / name).unlink(missing_ok=True)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None
