"""``fastdeploy --run``: start the loop(s) and the API as child processes and keep them up.

Each part runs as its own ``fastdeploy --loop`` / ``fastdeploy --rest``
process, exactly as when scaled by hand, so there is one way to run a part.
Gunicorn's habits: signal handlers only set a flag, a child that dies is
restarted with capped back-off, and stopping is terminate, then wait up to
the graceful timeout, then kill, one log line a step. A child that exits with
CONFIG_ERROR (bad recipe or settings) stops everything: restarting cannot fix it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastdeploy.settings import Settings

log = logging.getLogger(__name__)

CONFIG_ERROR = 3
MAX_RESTART_DELAY_S = 10.0
PR_SET_PDEATHSIG = 1
CONFIG_ERROR_GRACE_S = 2.0
STOP_MARGIN_S = 5.0  # children get the whole graceful timeout to themselves, then a little slack


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    restart_at: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGTERM to the child if the supervisor dies, even by kill -9."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, recipe_path: Path, stages: int, settings: Settings) -> None:
        self.settings = settings
        self.env = {**os.environ, **settings.to_env()}
        command = [sys.executable, "-m", "fastdeploy"]
        self.children = [
            Child(f"loop-{stage}.{i + 1}", command + ["--loop", str(recipe_path), "--stage", str(stage)])
            for stage in range(1, stages + 1) for i in range(settings.loops)
        ]
        self.children.append(Child("api", command + ["--rest", str(recipe_path)]))
        self._stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        for child in self.children:
            self._start(child)
        exit_code = 0
        try:
            while not self._stopping:
                exit_code = self._check_children()
                if exit_code:
                    break
                time.sleep(0.2)
        finally:
            # after a config error no loop ever served, so there is no work to let finish
            self._stop_all(CONFIG_ERROR_GRACE_S if exit_code else self.settings.graceful_timeout_s + STOP_MARGIN_S)
        return exit_code

    def _request_stop(self, signum: int, frame) -> None:
        self._stopping = True

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(child.argv, env=self.env, preexec_fn=_die_with_parent)
        child.started_at = time.monotonic()
        log.info("supervisor: started %s (pid %d)", child.name, child.process.pid)

    def _check_children(self) -> int:
        now = time.monotonic()
        for child in self.children:
            if child.process is None:
                if now >= child.restart_at:
                    self._start(child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            if code == CONFIG_ERROR:
                log.error("supervisor: %s cannot start (exit %d); stopping", child.name, code)
                return code
            # a child that ran for a while earns a fresh back-off
            child.restarts = 0 if now - child.started_at > 60 else child.restarts + 1
            delay = min(0.5 * 2 ** child.restarts, MAX_RESTART_DELAY_S) if child.restarts else 0.0
            log.warning("supervisor: %s (pid %d) exited with %d; restarting in %.1fs",
                        child.name, child.process.pid, code, delay)
            child.process, child.restart_at = None, now + delay
        return 0

    def _stop_all(self, grace_s: float) -> None:
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            log.info("supervisor: terminating %s (pid %d)", child.name, child.process.pid)
            child.process.terminate()
        deadline = time.monotonic() + grace_s
        for child in running:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                log.info("supervisor: %s exited with %d", child.name, child.process.returncode)
            except subprocess.TimeoutExpired:
                log.warning("supervisor: %s did not stop in %.0fs; killing", child.name, grace_s)
                child.process.kill()
                child.process.wait()
