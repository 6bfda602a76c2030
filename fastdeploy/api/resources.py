"""One falcon resource per endpoint; each holds the parts it needs and nothing global."""

from __future__ import annotations

import dataclasses
import hashlib
import platform
from dataclasses import dataclass
from typing import Callable

import falcon

from fastdeploy import __version__, metrics
from fastdeploy.api.group_commit import GroupCommit
from fastdeploy.api.media import (EVENT_STREAM, PredictionRequest, read_prediction_request,
                                  write_document)
from fastdeploy.api.streaming import stream_events
from fastdeploy.api.waiter import ResultWaiter
from fastdeploy.errors import (Conflict, FastDeployError, NotAcceptable, NotFound, NotReady, QueueFull,
                               SyncTimeout, WrongShape)
from fastdeploy.results import result_document
from fastdeploy.settings import Settings
from fastdeploy.store.base import (ATTEMPTS_EXHAUSTED, DEADLINE_EXCEEDED, FAILED, PENDING,
                                   PREDICTOR_FAILED, IdempotencyConflict, NewRequest, QueueFullError, Store)
from fastdeploy.store.codec import FileOutput, pack

MAX_IDEMPOTENCY_KEY_CHARS = 255
FAILURE_STATUS = {PREDICTOR_FAILED: 500, DEADLINE_EXCEEDED: 504, ATTEMPTS_EXHAUSTED: 500}


class RequestFailed(FastDeployError):
    """The request was accepted and then failed; the body keeps its id and the store's reason."""

    def __init__(self, document: dict) -> None:
        super().__init__(document["error"]["message"])
        self.code = document["error"]["code"]
        self.http_status = FAILURE_STATUS.get(self.code, 500)
        self.document = document

    def body(self) -> dict:
        return self.document


@dataclass(frozen=True)
class RecipeInfo:
    """What the API knows of its recipe without importing any predictor."""

    name: str
    path: str
    stages: int = 1
    file_outputs: tuple[str, ...] = ()


class Submitter:
    """Validated inputs into the queue, shared by /sync and /async."""

    def __init__(self, settings: Settings, store: Store, recipe: RecipeInfo, clock: Callable[[], float],
                 new_id: Callable[[], str]) -> None:
        self.settings, self.store, self.recipe, self.clock, self.new_id = settings, store, recipe, clock, new_id
        self.groups = GroupCommit(store)

    def submit(self, request: PredictionRequest, timeout_s: float | None,
               idempotency_key: str | None = None) -> str:
        """Queue the request and return its id (an earlier one for a repeated idempotency key)."""
        deadline = None if timeout_s is None else self.clock() + timeout_s
        payloads = [pack(x) for x in request.inputs]
        fingerprint = None
        if idempotency_key is not None:
            fingerprint = hashlib.sha256(pack([payloads, request.webhook_url, request.timeout_s])).hexdigest()
        try:
            return self.groups.enqueue(NewRequest(self.new_id(), payloads, deadline, request.webhook_url,
                                                  self.recipe.stages, idempotency_key, fingerprint))
        except QueueFullError as exc:
            raise QueueFull(f"queue is full: {exc} (FASTDEPLOY_MAX_QUEUE_LENGTH); retry later",
                            self.settings.retry_after_s) from None
        except IdempotencyConflict as exc:
            raise Conflict(f"{exc}; use a new Idempotency-Key for a new request") from None


class SyncResource:
    def __init__(self, submitter: Submitter, waiter: ResultWaiter) -> None:
        self.submitter, self.waiter = submitter, waiter

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        request = read_prediction_request(req, self.submitter.settings)
        timeout_s = request.timeout_s or self.submitter.settings.timeout_s
        file_type = wanted_file_type(req, self.submitter.recipe)
        request_id = self.submitter.submit(request, timeout_s)
        if request.stream:
            resp.content_type = EVENT_STREAM
            resp.set_header("Cache-Control", "no-cache")
            resp.stream = stream_events(self.submitter.store, self.waiter, request_id, timeout_s)
            return
        try:
            result = self.waiter.wait(request_id, timeout_s)
        except TimeoutError:
            raise SyncTimeout(f"no result within {timeout_s}s; poll /result/{request_id}", request_id) from None
        if result is None:
            raise NotFound(f"result of {request_id} expired before it was read (FASTDEPLOY_RESULT_TTL_S)")
        document = result_document(result)
        if result.status == FAILED:
            raise RequestFailed(document)
        write_result(req, resp, document, file_type)


class AsyncResource:
    def __init__(self, submitter: Submitter) -> None:
        self.submitter = submitter

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        key = idempotency_key(req)
        request = read_prediction_request(req, self.submitter.settings)
        request_id = self.submitter.submit(request, request.timeout_s, key)
        write_document(req, resp, {"id": request_id, "status": PENDING, "result_url": f"/result/{request_id}"},
                       status=202)


def idempotency_key(req: falcon.Request) -> str | None:
    key = req.get_header("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY_CHARS and key.isprintable()):
        raise WrongShape(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters")
    return key


class ResultResource:
    def __init__(self, store: Store, recipe: RecipeInfo) -> None:
        self.store, self.recipe = store, recipe

    def on_get(self, req: falcon.Request, resp: falcon.Response, request_id: str) -> None:
        file_type = wanted_file_type(req, self.recipe)
        result = self.store.result(request_id)
        if result is None:
            raise NotFound(f"no request {request_id}: unknown, or its result expired (FASTDEPLOY_RESULT_TTL_S)")
        if result.status == PENDING:
            write_document(req, resp, result_document(result), status=202)
        else:
            write_result(req, resp, result_document(result), file_type)


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        write_document(req, resp, {"status": "ok"})


class ReadyResource:
    """Ready when every stage has a loop that tuned and reported in within loop_stale_s."""

    def __init__(self, settings: Settings, store: Store, recipe: RecipeInfo, clock: Callable[[], float]) -> None:
        self.settings, self.store, self.recipe, self.clock = settings, store, recipe, clock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        live = live_loops(self.store, self.clock(), self.settings.loop_stale_s)
        missing = sorted(set(range(1, self.recipe.stages + 1)) - {loop.stage for loop in live})
        if missing:
            raise NotReady(f"no loop serves stage(s) {', '.join(map(str, missing))} yet "
                           "(starting, tuning, or stopped)")
        write_document(req, resp, {"status": "ready", "loops": len(live)})


class MetaResource:
    def __init__(self, settings: Settings, store: Store, recipe: RecipeInfo, clock: Callable[[], float]) -> None:
        self.settings, self.store, self.recipe, self.clock = settings, store, recipe, clock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        loops = live_loops(self.store, self.clock(), self.settings.loop_stale_s)
        write_document(req, resp, {
            "recipe": dataclasses.asdict(self.recipe),
            "batch_size": next((loop.batch_size for loop in loops if loop.stage == 1), None),
            "stages": [{"stage": stage, "batch_sizes": sorted({lp.batch_size for lp in loops if lp.stage == stage}),
                        "loops": sum(lp.stage == stage for lp in loops)}
                       for stage in range(1, self.recipe.stages + 1)],
            "loops": [dataclasses.asdict(loop) for loop in loops],
            "queue_length": self.store.queue_length(),
            "settings": self.settings.public(),
            "versions": {"fastdeploy": __version__, "python": platform.python_version(),
                         "falcon": falcon.__version__},
        })


class MetricsResource:
    """Prometheus text format, from the store (see fastdeploy.metrics)."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float]) -> None:
        self.settings, self.store, self.clock = settings, store, clock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = metrics.CONTENT_TYPE
        resp.data = metrics.render(self.store, self._live_loops)

    def _live_loops(self) -> list:
        return live_loops(self.store, self.clock(), self.settings.loop_stale_s)


def wanted_file_type(req: falcon.Request, recipe: RecipeInfo) -> str | None:
    """The declared file media type the client accepts, if it asks for one (checked before any work)."""
    accept = (req.accept or "").lower()
    for media_type in recipe.file_outputs:
        if media_type.lower() in accept:
            return media_type
    return None


def write_result(req: falcon.Request, resp: falcon.Response, document: dict, file_type: str | None) -> None:
    """A finished result: the file itself when the client asked for a file type, else the document."""
    if file_type is None:
        write_document(req, resp, document)
        return
    results = document.get("results") or []
    if len(results) != 1 or not isinstance(results[0], FileOutput):
        raise NotAcceptable(f"Accept: {file_type} needs exactly one input whose output is a file; "
                            f"this request has {len(results)} result(s). Ask for application/json instead")
    file = results[0]
    if file.media_type != file_type:
        raise NotAcceptable(f"the predictor returned {file.media_type}, not {file_type}")
    resp.content_type = file.media_type
    resp.data = file.data
    resp.set_header("Content-Disposition", f'inline; filename="{file.name}"')
    resp.set_header("X-FastDeploy-Id", document["id"])


def live_loops(store: Store, now: float, stale_s: float) -> list:
    return [loop for loop in store.loops() if now - loop.heartbeat_at <= stale_s]
