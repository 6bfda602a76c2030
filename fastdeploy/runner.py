"""Run a recipe inside this process, for tests and notebooks, with no server.

The runner does not call the predictor directly: it starts a real loop per
stage (threads) on a private embedded store and sends inputs through the
queue, so batching, chaining, streaming, file handling and error reporting
are the ones production uses::

    from fastdeploy.runner import RecipeRunner

    with RecipeRunner("recipes/echo_chained") as runner:
        print(runner.predict(["hello"]))
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

from fastdeploy.api.streaming import request_events
from fastdeploy.api.waiter import ResultWaiter
from fastdeploy.store import scratch_root
from fastdeploy.loop import Loop
from fastdeploy.recipe import load_recipe
from fastdeploy.settings import Settings
from fastdeploy.store.base import FAILED
from fastdeploy.store.codec import pack, unpack
from fastdeploy.store.local import LocalStore


class PredictionFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class RecipeRunner:
    def __init__(self, recipe_path: str | Path, settings: Settings | None = None) -> None:
        self.recipe = load_recipe(recipe_path)
        self.settings = settings or Settings()
        self._folder = Path(tempfile.mkdtemp(prefix=f"fastdeploy-runner-{self.recipe.name}-", dir=scratch_root()))
        self.store = self._open_store()
        self.loops = [Loop(self.recipe, self._open_store(), self.settings, stage=stage.number)
                      for stage in self.recipe.stages]
        for loop in self.loops:
            loop.prepare()
        self._threads = [threading.Thread(target=loop.serve, name=f"stage-{loop.stage}", daemon=True)
                         for loop in self.loops]
        for thread in self._threads:
            thread.start()
        self.waiter = ResultWaiter(self.store)

    def _open_store(self) -> LocalStore:
        return LocalStore(self._folder, max_queue_length=self.settings.max_queue_length,
                          max_attempts=self.settings.max_attempts, result_ttl_s=self.settings.result_ttl_s)

    @property
    def batch_sizes(self) -> list[int]:
        """The batch size each stage tuned (or was given)."""
        return [loop.batch_size for loop in self.loops]

    def submit(self, inputs: list) -> str:
        request_id = uuid.uuid4().hex
        self.store.enqueue(request_id, [pack(x) for x in inputs], stages=len(self.recipe.stages))
        return request_id

    def predict(self, inputs: list, timeout_s: float = 60.0) -> list:
        """Outputs for inputs, in order; raises PredictionFailed with the server's reason."""
        request_id = self.submit(inputs)
        result = self.waiter.wait(request_id, timeout_s)
        if result is None:
            raise PredictionFailed("not_found", f"the result of {request_id} expired before it was read "
                                                f"(FASTDEPLOY_RESULT_TTL_S={self.settings.result_ttl_s})")
        if result.status == FAILED:
            raise PredictionFailed(result.failure.code, result.failure.message)
        return [unpack(output) for output in result.outputs]

    def stream(self, inputs: list, timeout_s: float = 60.0) -> Iterator[tuple[int, Any]]:
        """(input index, chunk) pairs as the last stage yields them."""
        request_id = self.submit(inputs)
        for name, data in request_events(self.store, self.waiter, request_id, timeout_s):
            if name == "chunk":
                yield data["index"], data["data"]
            elif name == "error":
                raise PredictionFailed(data["error"]["code"], data["error"]["message"])

    def close(self) -> None:
        self.waiter.close()
        for loop in self.loops:
            loop.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        for loop in self.loops:
            loop.store.close()
        self.store.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> "RecipeRunner":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
