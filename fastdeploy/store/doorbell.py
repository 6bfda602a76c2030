"""Wake waiting processes the moment the store changes, without polling.

A process that waits (a loop for work, an API worker for results) listens on
a Unix datagram socket and registers it as an empty file under
``<store>/bells/<role>.<token>``. A writer rings a role by sending a message
to every registered socket: one byte, or what changed (the local store sends
the results it just wrote, so a waiting API worker need not read them back).
Datagrams that arrive while nobody waits stay buffered, so a ring between
"check the store" and "wait" is never lost. The writer sends to each listener
from a socket of its own: a send then fails only when that listener's buffer
is full of messages it has not read, which already means "wake up" (its
reader must not count on every message arriving). Cost: one ``listdir`` and
one ``sendto`` per listener; an idle waiter costs nothing.

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

from fastdeploy.store.rings import MAX_RING_BYTES, PLAIN_RING

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

    def wait(self, timeout_s: float) -> list[bytes] | None:
        """Every message rung since the last wait, once at least one came within timeout_s; None if none came."""
        self._sock.settimeout(max(timeout_s, 0.0))
        try:
            messages = [self._sock.recv(MAX_RING_BYTES)]
        except (socket.timeout, BlockingIOError):
            return None
        self._sock.setblocking(False)
        try:
            while True:
                messages.append(self._sock.recv(MAX_RING_BYTES))
        except (BlockingIOError, socket.timeout):
            return messages

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
        self._senders: dict[str, dict[str, socket.socket]] = {}  # role -> listener token -> its socket

    def listen(self, role: str) -> Bell:
        return Bell(self.folder, role)

    def ring(self, role: str, message: bytes = PLAIN_RING) -> bool:
        """Send message (at most MAX_RING_BYTES: a datagram) to every listener of the role.

        False when a live listener's buffer was full, so that it will wake without this message.
        """
        prefix = role + "."
        senders = self._senders.setdefault(role, {})
        listening = {name[len(prefix):] for name in os.listdir(self.folder) if name.startswith(prefix)}
        for token in senders.keys() - listening:  # listeners that left (a restarted API worker)
            senders.pop(token).close()
        delivered = [self._send(senders, prefix + token, token, message) for token in listening]
        return all(delivered)  # a list, not a generator: every listener is sent to

    def _send(self, senders: dict[str, socket.socket], name: str, token: str, message: bytes) -> bool:
        sender = senders.get(token)
        if sender is None:
            sender = senders[token] = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
        try:
            sender.sendto(message, _address(token))
        except BlockingIOError:
            return False  # its buffer is full of messages it has not read: it will wake anyway
        except (ConnectionRefusedError, FileNotFoundError):
            log.debug("doorbell: %s has no listener (its process died); removing it", name)
            (self.folder / name).unlink(missing_ok=True)
            senders.pop(token).close()
        return True

    def close(self) -> None:
        for senders in self._senders.values():
            for sender in senders.values():
                sender.close()
        self._senders.clear()
