"""Load a recipe folder: its predictor, its example inputs and its requirements.

A recipe is plain files so a user never imports fastdeploy to write one:
``predictor.py`` defines ``predictor(inputs, batch_size) -> list``,
``example.py`` defines ``example`` (a list of sample inputs) and
``requirements.txt`` lists what the predictor needs.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from fastdeploy.errors import RecipeError

Predictor = Callable[[list, int], list]


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    predictor: Predictor
    predictor_file: Path
    example: list
    requirements: list[str]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "predictor": self.predictor_file.name,
            "example_inputs": len(self.example),
            "requirements": self.requirements,
        }


def recipe_name(path: str | Path) -> str:
    """The name that keys a recipe's queue, so API and loop find the same one."""
    return Path(path).resolve().name


def load_recipe(path: str | Path) -> Recipe:
    folder = Path(path).resolve()
    if not folder.is_dir():
        raise RecipeError(f"recipe folder {path} does not exist; pass the folder that holds predictor.py")
    predictor_file = _required_file(folder, "predictor.py", "define predictor(inputs, batch_size) returning a list")
    example_file = _required_file(folder, "example.py", "define example = [...] with a few sample inputs")
    _required_file(folder, "requirements.txt", "list the packages the predictor needs (it may be empty)")

    predictor = getattr(_import(predictor_file, folder), "predictor", None)
    if not callable(predictor):
        raise RecipeError(f"{predictor_file} has no function 'predictor'; define predictor(inputs, batch_size)")
    example = getattr(_import(example_file, folder), "example", None)
    if not isinstance(example, list) or not example:
        raise RecipeError(f"{example_file} must define 'example' as a non-empty list of sample inputs")
    return Recipe(
        name=folder.name,
        path=folder,
        predictor=predictor,
        predictor_file=predictor_file,
        example=example,
        requirements=_read_requirements(folder / "requirements.txt"),
    )


def check_outputs(recipe: Recipe, inputs: list, outputs: Any) -> None:
    """Refuse a predictor answer that cannot be matched back to its inputs."""
    if not isinstance(outputs, (list, tuple)):
        raise RecipeError(
            f"predictor returned {type(outputs).__name__}, not a list, in {recipe.predictor_file}; "
            "return one output per input"
        )
    if len(outputs) != len(inputs):
        raise RecipeError(
            f"predictor returned {len(outputs)} outputs for {len(inputs)} inputs in {recipe.predictor_file}"
        )


def _required_file(folder: Path, name: str, what_to_do: str) -> Path:
    file = folder / name
    if not file.is_file():
        raise RecipeError(f"recipe {folder} has no {name}; {what_to_do}")
    return file


def _import(file: Path, folder: Path) -> ModuleType:
    """Import a recipe file by path, with its folder importable for its own helpers."""
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    module_name = f"fastdeploy_recipe_{folder.name}_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise RecipeError(f"importing {file} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _read_requirements(file: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in file.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]
