"""``fastdeploy.yaml``: what a recipe declares beyond its code. Optional; every key has a default.

Strict on purpose: an unknown key or a wrong type stops the start with the
key's name, because a typo in a declaration would otherwise be ignored and
the recipe would silently behave differently in production.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fastdeploy.errors import RecipeError

FILE_INPUT_MODES = ("bytes", "path")
BOOTSTRAP_TIMES = ("build", "start")
RESOURCE_KEYS = ("cpu", "memory", "gpu")


@dataclass(frozen=True)
class RecipeConfig:
    file_inputs: str = field(default="bytes", metadata={
        "help": "How an uploaded file reaches the predictor: 'bytes', or 'path' (a file on tmpfs)."})
    file_outputs: list = field(default_factory=list, metadata={
        "help": "Media types (e.g. image/png) the predictor may answer with a file path."})
    # what an image built with `fastdeploy --build` needs beyond requirements.txt
    base_image: str = field(default="", metadata={"help": "Base image; empty: the --base option's default."})
    system_packages: list = field(default_factory=list, metadata={
        "help": "Debian packages installed into the image (apt-get)."})
    bootstrap: str = field(default="", metadata={"help": "A shell script in the recipe run at build or start."})
    bootstrap_at: str = field(default="build", metadata={"help": "When bootstrap runs: 'build' or 'start'."})
    env: dict = field(default_factory=dict, metadata={"help": "Extra environment variables for the image."})
    command: list = field(default_factory=list, metadata={
        "help": "A custom entry command; empty: fastdeploy --run on the recipe."})
    gpu: bool = field(default=False, metadata={"help": "The loop needs a GPU (Kubernetes requests nvidia.com/gpu)."})
    resources: dict = field(default_factory=dict, metadata={
        "help": "Resources per loop container: cpu, memory, gpu (count)."})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(file: Path) -> RecipeConfig:
    if not file.exists():
        return RecipeConfig()
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{file} is not valid YAML: {exc}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise RecipeError(f"{file} must be a mapping of keys to values, not {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(RecipeConfig)}
    for key, value in raw.items():
        if key not in fields:
            raise RecipeError(f"{file}: unknown key '{key}'; known keys: {', '.join(fields)}")
        factory = fields[key].default_factory
        expected = factory if factory in (list, dict) else type(fields[key].default)
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise RecipeError(f"{file}: '{key}' must be a {expected.__name__}, not {type(value).__name__}")
    config = RecipeConfig(**raw)
    if config.file_inputs not in FILE_INPUT_MODES:
        raise RecipeError(f"{file}: 'file_inputs' is {config.file_inputs!r}; use one of {', '.join(FILE_INPUT_MODES)}")
    for media_type in config.file_outputs:
        if not isinstance(media_type, str) or "/" not in media_type:
            raise RecipeError(f"{file}: 'file_outputs' entries must be media types like image/png, not {media_type!r}")
    _check_build_keys(file, config)
    return config


def _check_build_keys(file: Path, config: RecipeConfig) -> None:
    if config.bootstrap_at not in BOOTSTRAP_TIMES:
        raise RecipeError(f"{file}: 'bootstrap_at' is {config.bootstrap_at!r}; use one of {', '.join(BOOTSTRAP_TIMES)}")
    if config.bootstrap and not (file.parent / config.bootstrap).is_file():
        raise RecipeError(f"{file}: 'bootstrap' names {config.bootstrap}, which is not a file in the recipe")
    for name in ("system_packages", "command"):
        if not all(isinstance(item, str) and item for item in getattr(config, name)):
            raise RecipeError(f"{file}: '{name}' must be a list of non-empty strings")
    for key, value in config.env.items():
        if not isinstance(key, str) or not key.isidentifier() or isinstance(value, (dict, list)):
            raise RecipeError(f"{file}: 'env' entry {key!r} must map a variable name to a plain value")
    unknown = sorted(set(config.resources) - set(RESOURCE_KEYS))
    if unknown:
        raise RecipeError(f"{file}: unknown key 'resources.{unknown[0]}'; known: {', '.join(RESOURCE_KEYS)}")
