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


@dataclass(frozen=True)
class RecipeConfig:
    file_inputs: str = field(default="bytes", metadata={
        "help": "How an uploaded file reaches the predictor: 'bytes', or 'path' (a file on tmpfs)."})
    file_outputs: list = field(default_factory=list, metadata={
        "help": "Media types (e.g. image/png) the predictor may answer with a file path."})

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
        expected = list if fields[key].default_factory is list else type(fields[key].default)
        if not isinstance(value, expected):
            raise RecipeError(f"{file}: '{key}' must be a {expected.__name__}, not {type(value).__name__}")
    config = RecipeConfig(**raw)
    if config.file_inputs not in FILE_INPUT_MODES:
        raise RecipeError(f"{file}: 'file_inputs' is {config.file_inputs!r}; use one of {', '.join(FILE_INPUT_MODES)}")
    for media_type in config.file_outputs:
        if not isinstance(media_type, str) or "/" not in media_type:
            raise RecipeError(f"{file}: 'file_outputs' entries must be media types like image/png, not {media_type!r}")
    return config
