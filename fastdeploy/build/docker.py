"""Talk to a Docker engine when there is one; otherwise say what to run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def build_commands(folder: Path, tag: str, push_to: str | None) -> list[list[str]]:
    commands = [["docker", "build", "-t", tag, str(folder)]]
    if push_to:
        remote = f"{push_to.rstrip('/')}/{tag}"
        commands += [["docker", "tag", tag, remote], ["docker", "push", remote]]
    return commands


def run_command(tag: str) -> list[str]:
    return ["docker", "run", "--rm", "-p", "8080:8080", "--shm-size=1g", tag]
