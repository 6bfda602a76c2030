"""Lay out a build folder: the recipe, fastdeploy's own source, the Dockerfile, the manifests.

The image installs fastdeploy from the source copied here rather than from a
registry, so it runs exactly the version that built it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import fastdeploy
from fastdeploy.build.dockerfile import render_dockerfile, render_dockerignore
from fastdeploy.build.k8s import render_manifests
from fastdeploy.errors import RecipeError
from fastdeploy.recipe import Recipe

SOURCE_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
RECIPE_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "build", "fastdeploy_dbs")


@dataclass(frozen=True)
class BuildOptions:
    base_image: str | None = None
    tag: str | None = None
    k8s: bool = False
    replicas: int = 1
    cpu: str = "1"
    memory: str = "2Gi"
    store_url: str = ""  # a shared Redis: API and loops become separate Deployments
    queue_per_loop: int = 64


def source_root() -> Path:
    """The checkout fastdeploy runs from (its setup.py sits beside the package)."""
    root = Path(fastdeploy.__file__).resolve().parent.parent
    if not (root / "setup.py").is_file():
        raise RecipeError(f"fastdeploy at {root} was not installed from a source checkout (no setup.py); "
                          "install it with `pip install -e .` from the repository to build images")
    return root


def image_tag(recipe: Recipe, options: BuildOptions) -> str:
    return options.tag or f"fastdeploy-{recipe.name.lower().replace('_', '-')}"


def write_build_folder(recipe: Recipe, out: Path, options: BuildOptions) -> list[Path]:
    """Write everything `docker build` needs into ``out``; return the files written."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(recipe.path, out / "recipe", ignore=RECIPE_IGNORED)
    root = source_root()
    shutil.copytree(root / "fastdeploy", out / "fastdeploy-src" / "fastdeploy", ignore=SOURCE_IGNORED)
    for name in ("setup.py", "README.md"):
        shutil.copy2(root / name, out / "fastdeploy-src" / name)
    tag = image_tag(recipe, options)
    written = [out / "Dockerfile", out / ".dockerignore"]
    written[0].write_text(render_dockerfile(recipe, options.base_image, tag))
    written[1].write_text(render_dockerignore())
    if options.k8s:
        for name, text in render_manifests(recipe, tag, options).items():
            path = out / "k8s" / name
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written
