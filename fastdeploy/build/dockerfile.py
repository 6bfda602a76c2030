"""The Dockerfile and .dockerignore of a recipe, rendered from the named templates beside this file."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from string import Template

from fastdeploy import __version__
from fastdeploy.recipe import Recipe

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_BASE = "python:3.11.7-slim-bookworm"  # pinned: a rebuild months later gets the same Python


def entry_command(recipe: Recipe) -> list[str]:
    """What the container runs: the recipe's own command, or fastdeploy serving it."""
    command = list(recipe.config.command) or ["fastdeploy", "--run", "/app/recipe"]
    if recipe.config.bootstrap and recipe.config.bootstrap_at == "start":
        script = f"/app/recipe/{recipe.config.bootstrap}"
        return ["sh", "-c", f"sh {shlex.quote(script)} && exec {shlex.join(command)}"]
    return command


def render_dockerfile(recipe: Recipe, base_image: str | None, tag: str) -> str:
    config = recipe.config
    base = base_image or config.base_image or DEFAULT_BASE
    system_packages = list(config.system_packages)
    python_setup = ""
    if not base.startswith("python:"):  # e.g. a CUDA image: bring a Python of its own, in a venv
        system_packages = ["python3", "python3-venv", *system_packages]
        python_setup = "RUN python3 -m venv /opt/venv\nENV PATH=/opt/venv/bin:$PATH\n"
    packages = ""
    if system_packages:
        packages = ("\nRUN apt-get update \\\n    && apt-get install -y --no-install-recommends "
                    + " ".join(shlex.quote(p) for p in system_packages)
                    + " \\\n    && rm -rf /var/lib/apt/lists/*\n" + python_setup)
    bootstrap = ""
    if config.bootstrap and config.bootstrap_at == "build":
        bootstrap = f"RUN sh /app/recipe/{shlex.quote(config.bootstrap)}\n"
    env = "".join(f" \\\n    {key}={json.dumps(str(value))}" for key, value in sorted(config.env.items()))
    return Template((TEMPLATES / "Dockerfile.tmpl").read_text()).substitute(
        version=__version__,
        recipe=recipe.name,
        tag=tag,
        base_image=base,
        system_packages=packages,
        bootstrap=bootstrap,
        env=env,
        command=json.dumps(entry_command(recipe)),
    )


def render_dockerignore() -> str:
    return (TEMPLATES / "dockerignore.tmpl").read_text()
