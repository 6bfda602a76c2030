"""Serve the app with gunicorn and gevent workers, configured from Settings.

gevent lets one worker hold thousands of waiting /sync requests, each a
cheap greenlet; gunicorn supervises the workers. The app is built after the
fork (no preload), so each worker opens its own store connection.

On Linux each worker listens on a socket of its own (SO_REUSEPORT) and the
kernel spreads new connections over them. On one shared socket the worker
that happens to be awake takes every connection of a burst, so a client's
keep-alive pool could sit on one worker while the other idled (measured:
eight connections landed 8/0 in three of six starts).
"""

from __future__ import annotations

import errno
import math
import socket
import sys
import time

from gunicorn.app.base import BaseApplication

from fastdeploy.api.resources import RecipeInfo
from fastdeploy.errors import RecipeError
from fastdeploy.settings import Settings

REUSE_PORT = sys.platform.startswith("linux")  # elsewhere SO_REUSEPORT does not spread connections
PORT_RELEASE_WAIT_S = 5.0  # workers of a crashed API process exit within about a second of seeing it gone


class CannotListenError(RecipeError):
    """The API's address cannot be bound (another server has the port): restarting cannot fix that."""


class ApiServer(BaseApplication):
    def __init__(self, settings: Settings, recipe: RecipeInfo) -> None:
        self.settings = settings
        self.recipe = recipe
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        for key, value in {
            "bind": f"{s.host}:{s.port}",
            "workers": s.workers,
            "worker_class": "gevent",
            "worker_connections": s.worker_connections,
            "graceful_timeout": math.ceil(s.graceful_timeout_s),
            "timeout": 30,  # seconds a worker may block its event loop, not a request limit
            "keepalive": 2,  # gunicorn default; graceful stop waits this long for idle keep-alive clients
            "reuse_port": REUSE_PORT,
            "loglevel": s.log_level,
            "proc_name": f"fastdeploy-api-{self.recipe.name}",
            "control_socket_disable": True,  # one shared path in $HOME would clash between servers
        }.items():
            self.cfg.set(key, str(value))
        if s.certfile:
            self.cfg.set("certfile", s.certfile)
            self.cfg.set("keyfile", s.keyfile)

    def run(self) -> None:
        if REUSE_PORT:
            refuse_a_taken_port(self.settings.host, self.settings.port)
        super().run()

    def load(self):
        from fastdeploy.api.app import create_app
        from fastdeploy.store import open_store

        return create_app(self.settings, open_store(self.settings, self.recipe.name), self.recipe)


def refuse_a_taken_port(host: str, port: int, wait_s: float = PORT_RELEASE_WAIT_S) -> None:
    """Raise CannotListenError when host:port cannot be bound, as when something listens there.

    With SO_REUSEPORT a second server binding a taken port would not fail: it would
    silently split the port's connections with the first. A plain bind still fails,
    so it is tried first; for a few seconds, since the workers of an API process that
    crashed and is being restarted still listen until they notice.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    give_up_at = time.monotonic() + wait_s
    while True:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
            try:
                probe.bind(address)
                return
            except OSError as exc:
                taken = exc.errno == errno.EADDRINUSE
                if not taken or time.monotonic() > give_up_at:
                    hint = ("another server listens there: stop it, or choose another port (FASTDEPLOY_PORT)"
                            if taken else "check FASTDEPLOY_HOST and FASTDEPLOY_PORT")
                    raise CannotListenError(f"cannot listen on {host}:{port}: {exc.strerror}; {hint}") from None
        time.sleep(0.2)
