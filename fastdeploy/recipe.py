"""Load a recipe folder: its predictor stage(s), its example inputs and its declarations.

A recipe is plain files so a user never imports fastdeploy to write one:
``predictor.py`` defines ``predictor(inputs, batch_size) -> list`` (or a
chain ``predictor_1.py``, ``predictor_2.py``, ...), ``example.py`` defines
``example`` (a list of sample inputs), ``requirements.txt`` lists what the
predictors need, and an optional ``fastdeploy.yaml`` declares the rest.

Predictors are imported only when a loop asks for its stage: the API and a
stage-1 loop never load the model of stage 2.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from fastdeploy.errors import RecipeError
from fastdeploy.recipe_config import RecipeConfig, load_config

Predictor = Callable[[list, int], Any]
CHAINED = re.compile(r"^predictor_(\d+)\.py$")


@dataclass
class Stage:
    number: int
    file: Path
    _predictor: Predictor | None = field(default=None, repr=False)

    @property
    def predictor(self) -> Predictor:
        if self._predictor is None:
            predictor = getattr(_import(self.file), "predictor", None)
            if not callable(predictor):
                raise RecipeError(f"{self.file} has no function 'predictor'; define predictor(inputs, batch_size)")
            self._predictor = predictor
        return self._predictor

    @property
    def streams(self) -> bool:
        """A generator predictor yields chunks: one list per step, one chunk (or None) per input."""
        return inspect.isgeneratorfunction(self.predictor)


@dataclass
class Recipe:
    name: str
    path: Path
    stages: list[Stage]
    config: RecipeConfig
    requirements: list[str]

    def stage(self, number: int) -> Stage:
        if not 1 <= number <= len(self.stages):
            raise RecipeError(f"recipe {self.name} has {len(self.stages)} stage(s); there is no stage {number}")
        return self.stages[number - 1]

    def example(self, stage: int = 1) -> list:
        """Sample inputs of a stage: ``example_<k>`` from example.py, else the chain run on ``example``."""
        module = _import(self.path / "example.py")
        own = getattr(module, "example" if stage == 1 else f"example_{stage}", None)
        if own is not None:
            if not isinstance(own, list) or not own:
                raise RecipeError(f"{self.path / 'example.py'} must define 'example' as a non-empty list of "
                                  "sample inputs")
            return own
        previous = self.stage(stage - 1)
        return run_checked(previous, self.example(stage - 1))


def load_recipe(path: str | Path) -> Recipe:
    """Find the recipe's files and check they are all there; predictors load on first use."""
    folder = Path(path).resolve()
    if not folder.is_dir():
        raise RecipeError(f"recipe folder {path} does not exist; pass the folder that holds predictor.py")
    _required_file(folder, "example.py", "define example = [...] with a few sample inputs")
    _required_file(folder, "requirements.txt", "list the packages the predictor needs (it may be empty)")
    recipe = Recipe(
        name=folder.name,
        path=folder,
        stages=_find_stages(folder),
        config=load_config(folder / "fastdeploy.yaml"),
        requirements=_read_requirements(folder / "requirements.txt"),
    )
    recipe.example(1)  # fail now, not at the first request, when it is missing
    return recipe


def run_checked(stage: Stage, inputs: list, batch_size: int | None = None,
                on_chunks: Callable[[list], None] | None = None) -> list:
    """Run a stage and check its answer; a streaming stage's chunks are collected per input.

    ``on_chunks`` sees each step's chunks as they come (the loop stores them for
    streaming clients); ``batch_size`` defaults to the number of inputs.
    """
    batch_size = len(inputs) if batch_size is None else batch_size
    if not stage.streams:
        outputs = stage.predictor(list(inputs), batch_size)
        check_outputs(stage, inputs, outputs)
        return list(outputs)
    collected: list[list] = [[] for _ in inputs]
    for chunks in stage.predictor(list(inputs), batch_size):
        check_outputs(stage, inputs, chunks, "chunks")
        if on_chunks is not None:
            on_chunks(chunks)
        for so_far, chunk in zip(collected, chunks, strict=True):
            if chunk is not None:
                so_far.append(chunk)
    return collected


def check_outputs(stage: Stage, inputs: list, outputs: Any, what: str = "outputs") -> None:
    """Refuse a predictor answer that cannot be matched back to its inputs."""
    if not isinstance(outputs, (list, tuple)):
        raise RecipeError(
            f"predictor returned {type(outputs).__name__}, not a list, in {stage.file}; return one output per input"
        )
    if len(outputs) != len(inputs):
        raise RecipeError(f"predictor returned {len(outputs)} {what} for {len(inputs)} inputs in {stage.file}")


def _find_stages(folder: Path) -> list[Stage]:
    chained = sorted((int(m.group(1)), folder / m.group(0))
                     for m in map(CHAINED.match, (p.name for p in folder.iterdir())) if m)
    single = folder / "predictor.py"
    if chained and single.exists():
        raise RecipeError(f"recipe {folder} has both predictor.py and predictor_N.py files; keep one form")
    if not chained:
        _required_file(folder, "predictor.py", "define predictor(inputs, batch_size) returning a list")
        return [Stage(1, single)]
    numbers = [number for number, _ in chained]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RecipeError(f"recipe {folder} has stages {numbers}; number them 1, 2, 3, ... without gaps")
    return [Stage(number, file) for number, file in chained]


def count_stages(path: str | Path) -> int:
    """Stages of a recipe without importing anything (the API side)."""
    return len(_find_stages(Path(path).resolve()))


def _required_file(folder: Path, name: str, what_to_do: str) -> Path:
    file = folder / name
    if not file.is_file():
        raise RecipeError(f"recipe {folder} has no {name}; {what_to_do}")
    return file


def _import(file: Path) -> ModuleType:
    """Import a recipe file by path (once), with its folder importable for its own helpers."""
    folder = file.parent
    module_name = f"fastdeploy_recipe_{abs(hash(str(folder)))}_{file.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise RecipeError(f"importing {file} failed: {type(exc).__name__}: {exc}") from exc
    sys.modules[module_name] = module
    return module


def _read_requirements(file: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in file.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]
