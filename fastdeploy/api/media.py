"""Turn a request body into inputs and options, and a document into response bytes.

Parsing is strict and bounded: the body is read up to ``max_body_bytes`` and
no further, every shape problem names the field, and nothing reaches the
queue until the whole request is known to be valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import falcon
import msgpack
import orjson

from fastdeploy.errors import BadRequest, TooLarge, UnsupportedMediaType, WrongShape
from fastdeploy.results import json_bytes
from fastdeploy.settings import Settings

JSON = "application/json"
MSGPACK = "application/msgpack"
MSGPACK_TYPES = (MSGPACK, "application/x-msgpack")
OPTIONS = ("data", "timeout", "webhook")


@dataclass(frozen=True)
class PredictionRequest:
    inputs: list
    timeout_s: float | None
    webhook_url: str | None


def read_prediction_request(req: falcon.Request, settings: Settings) -> PredictionRequest:
    body = _decode(req, _read_body(req, settings.max_body_bytes))
    if isinstance(body, list):
        body = {"data": body}
    if not isinstance(body, dict):
        raise WrongShape(f"body is a {type(body).__name__}; send a list of inputs or {{\"data\": [...]}}")
    unknown = sorted(str(key) for key in body if key not in OPTIONS)
    if unknown:
        raise WrongShape(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(OPTIONS)}")
    inputs = body.get("data")
    if not isinstance(inputs, list) or not inputs:
        raise WrongShape("'data' must be a non-empty list of inputs")
    if len(inputs) > settings.max_inputs:
        raise TooLarge(f"{len(inputs)} inputs; the limit is {settings.max_inputs} (FASTDEPLOY_MAX_INPUTS)")
    timeout = body.get("timeout", req.get_param("timeout"))
    return PredictionRequest(
        inputs=inputs,
        timeout_s=None if timeout is None else _timeout(timeout, settings),
        webhook_url=_webhook(body.get("webhook")),
    )


def _read_body(req: falcon.Request, limit: int) -> bytes:
    if req.content_length is not None and req.content_length > limit:
        raise TooLarge(f"body is {req.content_length} bytes; the limit is {limit} (FASTDEPLOY_MAX_BODY_BYTES)")
    # falcon's bounded_stream reads Content-Length bytes and so sees a chunked body as empty;
    # the server's own stream decodes chunks and ends at the last one.
    stream = req.bounded_stream if req.content_length is not None else req.stream
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"body is over {limit} bytes, the limit (FASTDEPLOY_MAX_BODY_BYTES)")
    if not data:
        raise BadRequest("empty body; send a JSON list of inputs or {\"data\": [...]}")
    return data


def _decode(req: falcon.Request, data: bytes) -> Any:
    media_type = (req.content_type or JSON).split(";", 1)[0].strip().lower()
    if media_type == JSON:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from None
    if media_type in MSGPACK_TYPES:
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException, TypeError) as exc:
            raise BadRequest(f"body is not valid msgpack: {exc}") from None
    raise UnsupportedMediaType(f"Content-Type {media_type} is not accepted; use {JSON} or {MSGPACK}")


def _timeout(value: Any, settings: Settings) -> float:
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise WrongShape(f"timeout {value!r} is not a number of seconds") from None
    if not 0 < timeout <= settings.max_timeout_s:
        raise WrongShape(f"timeout {timeout} must be above 0 and at most {settings.max_timeout_s} "
                         "(FASTDEPLOY_MAX_TIMEOUT_S)")
    return timeout


def _webhook(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise WrongShape("webhook must be an http(s) URL of at most 2048 characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WrongShape(f"webhook {value!r} is not an http(s) URL")
    return value


def wants_msgpack(req: falcon.Request) -> bool:
    """msgpack when the client asks for it, or sent it and did not ask for anything else."""
    accept = (req.accept or "").lower()
    if any(media in accept for media in MSGPACK_TYPES):
        return True
    sent = (req.content_type or "").split(";", 1)[0].strip().lower()
    return sent in MSGPACK_TYPES and accept in ("", "*/*")


def write_document(req: falcon.Request, resp: falcon.Response, document: Any, status: int = 200) -> None:
    resp.status = status
    if wants_msgpack(req):
        resp.content_type = MSGPACK
        resp.data = msgpack.packb(document, use_bin_type=True)
    else:
        resp.content_type = JSON
        resp.data = json_bytes(document)
