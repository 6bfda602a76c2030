"""Files between the store and a predictor, on the loop's side.

Uploaded files cross the store as bytes (so any loop on any host can take
them); a recipe that declares ``file_inputs: path`` gets each one written to
tmpfs for the length of its batch. A recipe that declares ``file_outputs``
returns paths of files it wrote under ``$FASTDEPLOY_OUTPUT_DIR``; the loop
reads them back into the result and deletes them. A returned path anywhere
else is refused, so a predictor bug cannot hand out arbitrary files.
"""

from __future__ import annotations

import atexit
import mimetypes
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from fastdeploy.errors import RecipeError
from fastdeploy.recipe_config import RecipeConfig
from fastdeploy.store import scratch_root
from fastdeploy.store.codec import FileInput, FileOutput

OUTPUT_DIR_ENV = "FASTDEPLOY_OUTPUT_DIR"
UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(name: str) -> str:
    """A file name that cannot climb out of its folder: no separators, no dot-dot, bounded."""
    base = UNSAFE.sub("_", os.path.basename(name.replace("\\", "/")))[-100:].lstrip(".")
    return base or "file"


_process_folders: dict[int, Path] = {}


def process_folder() -> Path:
    """One scratch folder per process, shared by its loops, announced to predictors by env var.

    Predictors read ``$FASTDEPLOY_OUTPUT_DIR`` when they run, so every loop of a
    process (the in-process runner runs one per stage) must agree on it.
    """
    folder = _process_folders.get(os.getpid())
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="fastdeploy-files-", dir=scratch_root()))
        (folder / "inputs").mkdir()
        (folder / "outputs").mkdir()
        os.environ[OUTPUT_DIR_ENV] = str(folder / "outputs")
        _process_folders[os.getpid()] = folder
        atexit.register(shutil.rmtree, folder, True)
    return folder


class FileBridge:
    """Converts files on their way into and out of one loop's predictor."""

    def __init__(self, config: RecipeConfig) -> None:
        self.config = config
        folder = process_folder()
        self.inputs_dir = folder / "inputs"
        self.output_dir = folder / "outputs"

    def to_predictor(self, values: list) -> tuple[list, list[Path]]:
        """The predictor's inputs, and the files written for them (remove them after the batch)."""
        written: list[Path] = []
        inputs = [self._to_predictor(value, written) for value in values]
        return inputs, written

    def _to_predictor(self, value: Any, written: list[Path]) -> Any:
        if not isinstance(value, FileInput):
            return value
        if self.config.file_inputs == "bytes":
            return value.data
        path = self.inputs_dir / f"{uuid.uuid4().hex[:12]}-{safe_name(value.name)}"
        path.write_bytes(value.data)
        written.append(path)
        return str(path)

    def from_predictor(self, value: Any) -> Any:
        if not self.config.file_outputs or not isinstance(value, str) or not os.path.isabs(value):
            return value
        path = Path(value).resolve()
        if not path.is_relative_to(self.output_dir.resolve()):
            raise RecipeError(f"predictor returned the path {value}, outside its output folder {self.output_dir}; "
                              f"write output files under ${OUTPUT_DIR_ENV}")
        if not path.is_file():
            raise RecipeError(f"predictor returned the path {value}, which is not a file")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        output = FileOutput(path.name, media_type, path.read_bytes())
        path.unlink()
        if path.parent != self.output_dir.resolve():
            _remove_if_empty(path.parent)
        return output

    @staticmethod
    def remove(paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty: the predictor keeps other files there
