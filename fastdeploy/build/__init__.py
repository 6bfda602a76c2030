"""``fastdeploy --build``: a recipe as a Docker image and Kubernetes manifests."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import click

from fastdeploy.build.context import BuildOptions, image_tag, write_build_folder
from fastdeploy.build.docker import build_commands, engine_available, run_command
from fastdeploy.recipe import load_recipe


def build_recipe(recipe_path: Path, out: Path | None, options: BuildOptions, *, use_docker: bool,
                 push_to: str | None) -> int:
    """Write the build folder, then build (and push) where an engine answers; return an exit code."""
    recipe = load_recipe(recipe_path)
    folder = (out or Path("build") / recipe.name).resolve()
    written = write_build_folder(recipe, folder, options)
    click.echo(f"wrote {len(written)} files to {folder}:")
    for path in written:
        click.echo(f"  {path.relative_to(folder)}")
    tag = image_tag(recipe, options)
    commands = build_commands(folder, tag, push_to)
    if use_docker and engine_available():
        for command in commands:
            click.echo(f"$ {shlex.join(command)}")
            if subprocess.run(command).returncode != 0:
                return 1
    else:
        reason = "--no-docker was given" if not use_docker else "no Docker engine answers here"
        click.echo(f"not building the image ({reason}); to build and run it:")
        for command in commands:
            click.echo(f"  {shlex.join(command)}")
    click.echo(f"  {shlex.join(run_command(tag))}")
    if options.k8s:
        click.echo(f"  kubectl apply -f {folder / 'k8s'}")
    return 0
