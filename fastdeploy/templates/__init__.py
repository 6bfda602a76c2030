"""Recipe templates for ``fastdeploy --new-recipe NAME --template T``: working folders to start from."""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = ("echo", "torch", "tensorflow", "streaming")


def write_template(template: str, destination: Path) -> None:
    """Copy a template to a new folder; refuses to overwrite one that exists."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}")
    if destination.exists():
        raise FileExistsError(f"{destination} already exists; pick a new folder name")
    shutil.copytree(HERE / template, destination, ignore=shutil.ignore_patterns("__pycache__"))
