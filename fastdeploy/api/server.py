"""Serve the app with gunicorn and gevent workers, configured from Settings.

gevent lets one worker hold thousands of waiting /sync requests, each a
cheap greenlet; gunicorn supervises the workers. The app is built after the
fork (no preload), so each worker opens its own store connection.
"""

from __future__ import annotations

import math

from gunicorn.app.base import BaseApplication

from fastdeploy.api.resources import RecipeInfo
from fastdeploy.settings import Settings


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
            "loglevel": s.log_level,
            "proc_name": f"fastdeploy-api-{self.recipe.name}",
            "control_socket_disable": True,  # one shared path in $HOME would clash between servers
        }.items():
            self.cfg.set(key, str(value))
        if s.certfile:
            self.cfg.set("certfile", s.certfile)
            self.cfg.set("keyfile", s.keyfile)

    def load(self):
        from fastdeploy.api.app import create_app
        from fastdeploy.store import open_store

        return create_app(self.settings, open_store(self.settings, self.recipe.name), self.recipe)
