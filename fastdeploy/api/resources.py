"""One falcon resource per endpoint; each holds the parts it needs and nothing global."""

from __future__ import annotations

import dataclasses
import platform
from typing import Callable

import falcon

from fastdeploy import __version__
from fastdeploy.api.media import PredictionRequest, read_prediction_request, write_document
from fastdeploy.api.waiter import ResultWaiter
from fastdeploy.errors import FastDeployError, NotFound, NotReady, QueueFull, SyncTimeout
from fastdeploy.results import result_document
from fastdeploy.settings import Settings
from fastdeploy.store.base import (ATTEMPTS_EXHAUSTED, DEADLINE_EXCEEDED, FAILED, PENDING,
                                   PREDICTOR_FAILED, QueueFullError, Store)
from fastdeploy.store.codec import pack

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


class Submitter:
    """Validated inputs into the queue, shared by /sync and /async."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float],
                 new_id: Callable[[], str]) -> None:
        self.settings, self.store, self.clock, self.new_id = settings, store, clock, new_id

    def submit(self, request: PredictionRequest, timeout_s: float | None) -> str:
        request_id = self.new_id()
        deadline = None if timeout_s is None else self.clock() + timeout_s
        try:
            self.store.enqueue(request_id, [pack(x) for x in request.inputs], deadline=deadline,
                               webhook_url=request.webhook_url)
        except QueueFullError as exc:
            raise QueueFull(f"queue is full: {exc} (FASTDEPLOY_MAX_QUEUE_LENGTH); retry later",
                            self.settings.retry_after_s) from None
        return request_id


class SyncResource:
    def __init__(self, submitter: Submitter, waiter: ResultWaiter) -> None:
        self.submitter, self.waiter = submitter, waiter

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        request = read_prediction_request(req, self.submitter.settings)
        timeout_s = request.timeout_s or self.submitter.settings.timeout_s
        request_id = self.submitter.submit(request, timeout_s)
        if not self.waiter.wait(request_id, timeout_s):
            raise SyncTimeout(f"no result within {timeout_s}s; poll /result/{request_id}", request_id)
        result = self.submitter.store.result(request_id)
        if result is None:
            raise NotFound(f"result of {request_id} expired before it was read (FASTDEPLOY_RESULT_TTL_S)")
        document = result_document(result)
        if result.status == FAILED:
            raise RequestFailed(document)
        write_document(req, resp, document)


class AsyncResource:
    def __init__(self, submitter: Submitter) -> None:
        self.submitter = submitter

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        request = read_prediction_request(req, self.submitter.settings)
        request_id = self.submitter.submit(request, request.timeout_s)
        write_document(req, resp, {"id": request_id, "status": PENDING, "result_url": f"/result/{request_id}"},
                       status=202)


class ResultResource:
    def __init__(self, store: Store) -> None:
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, request_id: str) -> None:
        result = self.store.result(request_id)
        if result is None:
            raise NotFound(f"no request {request_id}: unknown, or its result expired (FASTDEPLOY_RESULT_TTL_S)")
        write_document(req, resp, result_document(result), status=202 if result.status == PENDING else 200)


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        write_document(req, resp, {"status": "ok"})


class ReadyResource:
    """Ready when a loop has tuned and reported in within loop_stale_s."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float]) -> None:
        self.settings, self.store, self.clock = settings, store, clock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        live = live_loops(self.store, self.clock(), self.settings.loop_stale_s)
        if not live:
            raise NotReady("no loop is serving yet (starting, tuning, or stopped)")
        write_document(req, resp, {"status": "ready", "loops": len(live)})


class MetaResource:
    def __init__(self, settings: Settings, store: Store, recipe: dict, clock: Callable[[], float]) -> None:
        self.settings, self.store, self.recipe, self.clock = settings, store, recipe, clock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        loops = live_loops(self.store, self.clock(), self.settings.loop_stale_s)
        write_document(req, resp, {
            "recipe": self.recipe,
            "batch_size": loops[0].batch_size if loops else None,
            "loops": [dataclasses.asdict(loop) for loop in loops],
            "queue_length": self.store.queue_length(),
            "settings": self.settings.public(),
            "versions": {"fastdeploy": __version__, "python": platform.python_version(),
                         "falcon": falcon.__version__},
        })


def live_loops(store: Store, now: float, stale_s: float) -> list:
    return [loop for loop in store.loops() if now - loop.heartbeat_at <= stale_s]
