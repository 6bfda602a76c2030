"""Queue and results between the API and the loops; see base.Store for the contract."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastdeploy.settings import Settings
from fastdeploy.store.base import Store


def scratch_root() -> Path:
    """tmpfs when the machine has it, so queues and scratch files never wait on a disk."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else Path(tempfile.gettempdir())


def default_store_dir(recipe_name: str) -> Path:
    return scratch_root() / "fastdeploy" / recipe_name


def open_store(settings: Settings, recipe_name: str) -> Store:
    """The store that API and loops of one recipe share: a Redis when store_url names one, else embedded."""
    limits = {"max_queue_length": settings.max_queue_length, "max_attempts": settings.max_attempts,
              "result_ttl_s": settings.result_ttl_s, "loop_stale_s": settings.loop_stale_s}
    if settings.store_url:
        from fastdeploy.store.redis import RedisStore

        return RedisStore(settings.store_url, settings.store_namespace or recipe_name,
                          max_connections=settings.store_connections, **limits)
    from fastdeploy.store.local import LocalStore

    folder = Path(settings.store_dir) if settings.store_dir else default_store_dir(recipe_name)
    return LocalStore(folder, **limits)
