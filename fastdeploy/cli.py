"""The ``fastdeploy`` command. Options are generated from Settings, so a knob is declared once.

Logging is configured here and nowhere else. Each role imports its own
modules when it starts: the API must not import ``requests`` (and so ``ssl``)
before gevent patches its worker, and the supervisor needs neither.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
from pathlib import Path

import click

from fastdeploy import __version__
from fastdeploy.errors import RecipeError
from fastdeploy.recipe import count_stages
from fastdeploy.settings import ENV_PREFIX, Settings
from fastdeploy.supervisor import CONFIG_ERROR, Supervisor
from fastdeploy.templates import TEMPLATES, write_template

log = logging.getLogger("fastdeploy")

CLICK_TYPES = {"int": int, "float": float, "str": str}


def settings_options(command):
    """Add one ``--<field>`` option per Settings field, read from FASTDEPLOY_<FIELD> too."""
    for f in reversed(dataclasses.fields(Settings)):
        command = click.option(
            "--" + f.name.replace("_", "-"), f.name,
            type=CLICK_TYPES[f.type], default=f.default, show_default=True,
            envvar=ENV_PREFIX + f.name.upper(), show_envvar=True, help=f.metadata["help"],
        )(command)
    return command


RECIPE = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--run", "run_recipe", type=RECIPE, help="Serve RECIPE: its loop(s) and the API together.")
@click.option("--loop", "loop_recipe", type=RECIPE, help="Run only a predictor loop of RECIPE.")
@click.option("--stage", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --loop: which stage of a chained recipe (predictor_<stage>.py) to run.")
@click.option("--rest", "rest_recipe", type=RECIPE, help="Run only the API of RECIPE (gunicorn + gevent).")
@click.option("--build", "build_recipe_path", type=RECIPE,
              help="Write a Dockerfile (and with --k8s, manifests) for RECIPE; build it if Docker answers.")
@click.option("--base", envvar="FASTDEPLOY_BUILD_BASE", show_envvar=True,
              help="With --build: base image (default python:3.11.7-slim-bookworm; a CUDA image for GPUs).")
@click.option("--tag", envvar="FASTDEPLOY_BUILD_TAG", show_envvar=True,
              help="With --build: image tag (default fastdeploy-<recipe>).")
@click.option("--out", type=click.Path(path_type=Path), help="With --build: build folder (default build/<recipe>).")
@click.option("--no-docker", is_flag=True, help="With --build: write the files only.")
@click.option("--push", "push_to", metavar="REGISTRY", help="With --build: tag and push to REGISTRY.")
@click.option("--k8s", is_flag=True, help="With --build: also write Kubernetes manifests.")
@click.option("--replicas", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --k8s: replicas (and the autoscaler's minimum).")
@click.option("--k8s-cpu", default="1", show_default=True, help="With --k8s: CPU request per loop container.")
@click.option("--k8s-memory", default="2Gi", show_default=True, help="With --k8s: memory per loop container.")
@click.option("--k8s-queue-per-loop", type=click.IntRange(min=1), default=64, show_default=True,
              help="With --k8s and --store-url: queued inputs per loop replica before KEDA adds one.")
@click.option("--new-recipe", "new_recipe", type=click.Path(path_type=Path),
              help="Write a working recipe folder to start from, then exit.")
@click.option("--template", type=click.Choice(TEMPLATES), default="echo", show_default=True,
              help="With --new-recipe: what the new recipe starts as.")
@settings_options
@click.version_option(__version__, prog_name="fastdeploy")
def main(run_recipe: Path | None, loop_recipe: Path | None, stage: int, rest_recipe: Path | None,
         build_recipe_path: Path | None, base: str | None, tag: str | None, out: Path | None, no_docker: bool,
         push_to: str | None, k8s: bool, replicas: int, k8s_cpu: str, k8s_memory: str, k8s_queue_per_loop: int,
         new_recipe: Path | None, template: str, **knobs) -> None:
    """Serve a recipe folder (predictor.py, example.py, requirements.txt) over HTTP with batching."""
    modes = [m for m in (run_recipe, loop_recipe, rest_recipe, build_recipe_path, new_recipe) if m is not None]
    if len(modes) != 1:
        raise click.UsageError("give exactly one of --run RECIPE, --loop RECIPE, --rest RECIPE, --build RECIPE "
                               "or --new-recipe NAME")
    if build_recipe_path:
        from fastdeploy.build import build_recipe
        from fastdeploy.build.context import BuildOptions

        options = BuildOptions(base_image=base, tag=tag, k8s=k8s, replicas=replicas, cpu=k8s_cpu, memory=k8s_memory,
                               store_url=knobs["store_url"] or "", queue_per_loop=k8s_queue_per_loop)
        try:
            sys.exit(build_recipe(build_recipe_path, out, options, use_docker=not no_docker, push_to=push_to))
        except RecipeError as exc:
            raise click.ClickException(str(exc)) from None
    if new_recipe:
        try:
            write_template(template, new_recipe)
        except FileExistsError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"wrote {new_recipe}/ from the {template} template; serve it with: fastdeploy --run {new_recipe}")
        return
    try:
        settings = Settings(**knobs)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    try:
        if loop_recipe:
            sys.exit(run_loop(loop_recipe.resolve(), stage, settings))
        if run_recipe:
            sys.exit(Supervisor(run_recipe.resolve(), count_stages(run_recipe), settings).run())
        run_api(rest_recipe.resolve(), settings)
    except RecipeError as exc:
        log.error("%s", exc)
        sys.exit(CONFIG_ERROR)


def run_api(recipe_path: Path, settings: Settings) -> None:
    from fastdeploy.api.app import recipe_info
    from fastdeploy.api.server import ApiServer

    ApiServer(settings, recipe_info(recipe_path)).run()


def run_loop(recipe_path: Path, stage: int, settings: Settings) -> int:
    """Serve one stage until SIGTERM/SIGINT; a bad recipe raises RecipeError before any work is taken."""
    from fastdeploy.loop import Loop
    from fastdeploy.recipe import load_recipe
    from fastdeploy.store import open_store
    from fastdeploy.webhooks import WebhookSender

    recipe = load_recipe(recipe_path)
    store = open_store(settings, recipe.name)
    loop = Loop(recipe, store, settings, stage=stage)
    loop.prepare()
    stop_webhooks = threading.Event()

    def request_stop(signum, frame) -> None:
        loop.stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    sender = threading.Thread(target=WebhookSender(store, settings).run, args=(stop_webhooks,), name="webhooks")
    sender.start()
    try:
        loop.serve()
    finally:
        stop_webhooks.set()
        sender.join(timeout=settings.webhook_timeout_s + 1)
        store.close()
    return 0
