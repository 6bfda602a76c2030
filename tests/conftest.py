"""Shared fixtures: real stores, and real fastdeploy processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from fastdeploy.store.codec import pack
from fastdeploy.store.local import LocalStore

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "recipes" / "echo"
SLOW = ROOT / "tests" / "data" / "recipes" / "slow"
FOLDER_MARKERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker in FOLDER_MARKERS:
            if f"{os.sep}{marker}{os.sep}" in str(item.fspath):
                item.add_marker(getattr(pytest.mark, marker))


def write_recipe(folder: Path, predictor: str | None = "def predictor(inputs, batch_size):\n    return inputs\n",
                 example: str | None = "example = [1]\n", requirements: str | None = "") -> Path:
    """A recipe folder written by a test; a file given as None is left out."""
    folder.mkdir()
    for name, text in (("predictor.py", predictor), ("example.py", example), ("requirements.txt", requirements)):
        if text is not None:
            (folder / name).write_text(text)
    return folder


def enqueue_numbers(store, n: int) -> list[str]:
    """Requests r0 … r(n-1), each of one input: its number."""
    return [store.enqueue(f"r{i}", [pack(i)]) for i in range(n)]


REDIS_URL_VARIABLE = "FASTDEPLOY_TEST_REDIS_URL"


def redis_url() -> str:
    """The Redis the tests use; .ci/run starts one and sets the variable, so there it is never skipped."""
    import redis

    url = os.environ.get(REDIS_URL_VARIABLE)
    try:
        redis.Redis.from_url(url or "redis://127.0.0.1:6379/0", socket_connect_timeout=1).ping()
    except redis.ConnectionError as exc:
        if url:
            pytest.fail(f"{REDIS_URL_VARIABLE}={url} does not answer: {exc}")
        pytest.skip(f"no Redis on 127.0.0.1:6379 (apt-get install redis-server, or set {REDIS_URL_VARIABLE})")
    return url or "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_namespace():
    """A fresh key namespace in the test Redis, deleted afterwards: (url, namespace)."""
    from fastdeploy.store.redis import RedisStore

    url, namespace = redis_url(), f"test-{uuid.uuid4().hex}"
    yield url, namespace
    store = RedisStore(url, namespace)
    store.delete_all()
    store.close()


@pytest.fixture(params=["local", "redis"])
def make_store(request, tmp_path):
    """Build stores of one backend that share one queue, as API and loop processes do."""
    stores = []
    if request.param == "redis":
        from fastdeploy.store.redis import RedisStore

        url, namespace = request.getfixturevalue("redis_namespace")

        def build(**options):
            return RedisStore(url, namespace, **options)
    else:
        def build(**options):
            return LocalStore(tmp_path / "store", **options)

    def make(**options):
        store = build(**options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def children(pid: int) -> list[int]:
    """Direct children of a process, from /proc (no pkill -f: only the processes this test started)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A fastdeploy process tree started with its CLI, stopped by pid."""

    def __init__(self, mode: str, recipe: Path, port: int, store_dir: Path, log_path: Path,
                 env: dict | None = None, args: list[str] | None = None, **settings):
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        env = {**os.environ, **(env or {}), "FASTDEPLOY_PORT": str(port), "FASTDEPLOY_STORE_DIR": str(store_dir),
               "FASTDEPLOY_GRACEFUL_TIMEOUT_S": "10"}
        env.update({f"FASTDEPLOY_{k.upper()}": str(v) for k, v in settings.items()})
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "fastdeploy", f"--{mode}", str(recipe), *(args or [])],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, path: str = "/ready", timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + path, timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        pytest.fail(f"server alive but not ready after {timeout_s}s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self, timeout_s: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


@pytest.fixture
def start_server(tmp_path):
    """start_server(mode, recipe, **settings) -> Server, ready; every server is stopped after the test."""
    servers: list[Server] = []
    store_dir = tmp_path / "queue"

    def start(mode: str = "run", recipe: Path = ECHO, port: int | None = None, ready: str | None = "/ready",
              env: dict | None = None, args: list[str] | None = None, **settings) -> Server:
        server = Server(mode, recipe, port or free_port(), store_dir, tmp_path / f"server-{len(servers)}.log",
                        env, args, **settings)
        servers.append(server)
        if ready:
            server.wait_ready(ready)
        return server

    yield start
    for server in reversed(servers):
        server.stop()
