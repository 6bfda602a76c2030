"""The falcon app: routes, resources and the one error handler.

``create_app`` takes its parts (settings, store, clock, id generator) so tests
build it around a real store with no patching; ``get_app`` builds those parts
from the environment for gunicorn.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Callable

import falcon

from fastdeploy.api.auth import ApiKeyAuth
from fastdeploy.api.media import OPTIONS
from fastdeploy.api.openapi import OpenApiResource
from fastdeploy.api.resources import (AsyncResource, HealthResource, MetaResource, MetricsResource,
                                      ReadyResource, RecipeInfo, ResultResource, Submitter, SyncResource)
from fastdeploy.api.waiter import ResultWaiter
from fastdeploy.errors import FastDeployError
from fastdeploy.recipe import count_stages
from fastdeploy.recipe_config import load_config
from fastdeploy.results import json_bytes
from fastdeploy.settings import Settings
from fastdeploy.store import open_store
from fastdeploy.store.base import Store

log = logging.getLogger(__name__)


HTTP_ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
                    411: "length_required", 413: "too_large", 415: "unsupported_media_type", 422: "wrong_shape"}


def new_request_id() -> str:
    return uuid.uuid4().hex


def create_app(settings: Settings, store: Store, recipe: RecipeInfo, *, clock: Callable[[], float] = time.time,
               new_id: Callable[[], str] = new_request_id) -> falcon.App:
    keys = settings.key_list()
    app = falcon.App(middleware=[ApiKeyAuth(keys, settings.open_path_list())] if keys else [])
    app.req_options.strip_url_path_trailing_slash = True
    multipart = app.req_options.media_handlers[falcon.MEDIA_MULTIPART]
    multipart.parse_options.max_body_part_count = settings.max_inputs + len(OPTIONS)
    submitter = Submitter(settings, store, recipe, clock, new_id)
    app.add_route("/sync", SyncResource(submitter, ResultWaiter(store)))
    app.add_route("/async", AsyncResource(submitter))
    app.add_route("/result/{request_id}", ResultResource(store, recipe))
    app.add_route("/health", HealthResource())
    app.add_route("/ready", ReadyResource(settings, store, recipe, clock))
    app.add_route("/meta", MetaResource(settings, store, recipe, clock))
    app.add_route("/metrics", MetricsResource(settings, store, clock))
    app.add_route("/openapi.json", OpenApiResource(recipe))
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(FastDeployError, handle_fastdeploy_error)
    return app


def recipe_info(path: Path) -> RecipeInfo:
    """Read what the API needs from a recipe folder; imports no predictor."""
    config = load_config(path / "fastdeploy.yaml")
    return RecipeInfo(name=path.name, path=str(path), stages=count_stages(path),
                      file_outputs=tuple(config.file_outputs))


def get_app(recipe_path: str | None = None) -> falcon.App:
    """Build the app from FASTDEPLOY_* variables, as each gunicorn worker does."""
    path = Path(recipe_path or os.environ["FASTDEPLOY_RECIPE"]).resolve()
    settings = Settings.from_env()
    return create_app(settings, open_store(settings, path.name), recipe_info(path))


def _write_error(resp: falcon.Response, status: int, body: dict, headers: dict[str, str]) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json_bytes(body)
    for name, value in headers.items():
        resp.set_header(name, value)


def handle_fastdeploy_error(req: falcon.Request, resp: falcon.Response, exc: FastDeployError, params) -> None:
    _write_error(resp, exc.http_status, exc.body(), exc.headers())


def handle_http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError, params) -> None:
    """falcon's own errors (unknown route, wrong method) in our error format."""
    code = HTTP_ERROR_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.description or f"{exc.title}: {req.method} {req.path}"
    _write_error(resp, exc.status_code, {"error": {"code": code, "message": message}}, dict(exc.headers or {}))


def handle_unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params) -> None:
    log.exception("api: %s %s failed", req.method, req.path)
    body = {"error": {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}}
    _write_error(resp, 500, body, {})
