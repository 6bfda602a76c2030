"""The generated image's install steps and entry command, run for real.

No Docker engine runs here, so the honest check is to execute what the
Dockerfile executes, in a fresh venv, from the build folder, and serve with
its entry command; where an engine answers, the image itself is built and run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

import pytest
import requests

from fastdeploy.build.context import BuildOptions, write_build_folder
from fastdeploy.build.docker import engine_available
from fastdeploy.recipe import load_recipe
from tests.conftest import ECHO, free_port
from tests.unit.test_build import instructions


def test_dockerfile_steps_install_and_serve_the_recipe_in_a_fresh_venv(tmp_path):
    out = tmp_path / "build"
    write_build_folder(load_recipe(ECHO), out, BuildOptions())
    steps = instructions((out / "Dockerfile").read_text())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    paths = {"/app/recipe": str(out / "recipe"), "/opt/fastdeploy-src": str(out / "fastdeploy-src")}

    def local(text: str) -> str:
        for image_path, here in paths.items():
            text = text.replace(image_path, here)
        return text

    for keyword, arguments in steps:
        if keyword == "RUN" and arguments.startswith("pip install"):
            install = local(arguments.split(" && ")[0])  # the clean-up after it would delete our build folder copy
            subprocess.run([str(venv / "bin" / "python"), "-m", *shlex.split(install)], check=True,
                           capture_output=True, timeout=600)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    for keyword, arguments in steps:
        if keyword == "ENV":
            for assignment in shlex.split(arguments):
                name, _, value = assignment.partition("=")
                env[name] = value
    port = free_port()
    env.update(FASTDEPLOY_HOST="127.0.0.1", FASTDEPLOY_PORT=str(port), FASTDEPLOY_STORE_DIR=str(tmp_path / "q"))
    command = local(" ".join(__import__("json").loads(dict(steps)["CMD"])))
    log = tmp_path / "server.log"
    with open(log, "wb") as output:
        # cwd like the image's WORKDIR: not this checkout, whose fastdeploy `python -m` would import instead
        server = subprocess.Popen(shlex.split(command), env=env, stdout=output, stderr=subprocess.STDOUT, cwd=out)
    try:
        deadline = time.monotonic() + 60
        while not _ready(port):
            assert server.poll() is None, f"the entry command exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready after 60 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        answer = requests.post(f"http://127.0.0.1:{port}/sync", json=["from the image"], timeout=10)
        assert answer.json()["results"] == ["from the image"]
        fastdeploy = subprocess.run([str(venv / "bin" / "python"), "-c", "import fastdeploy; print(fastdeploy.__file__)"],
                                    capture_output=True, text=True, check=True, cwd=out).stdout
        assert str(venv) in fastdeploy  # served by the copy installed from the build folder
    finally:
        server.terminate()
        server.wait(timeout=30)


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.mark.skipif(not engine_available(), reason="no Docker engine answers on this machine (docker info fails)")
def test_image_builds_and_serves(tmp_path):
    out = tmp_path / "build"
    write_build_folder(load_recipe(ECHO), out, BuildOptions(tag="fastdeploy-echo-test"))
    subprocess.run(["docker", "build", "-t", "fastdeploy-echo-test", str(out)], check=True, timeout=1800)
    port = free_port()
    container = subprocess.run(["docker", "run", "-d", "--rm", "--shm-size=256m", "-p", f"127.0.0.1:{port}:8080",
                                "fastdeploy-echo-test"], check=True, capture_output=True, text=True).stdout.strip()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert requests.post(f"http://127.0.0.1:{port}/sync", json=[1], timeout=10).json()["results"] == [1]
    finally:
        subprocess.run(["docker", "stop", container], capture_output=True)
