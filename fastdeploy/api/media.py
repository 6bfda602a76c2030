"""Turn a request body into inputs and options, and a document into response bytes.

Parsing is strict and bounded: bodies are read up to their limit and no
further, every shape problem names the field, and nothing reaches the queue
until the whole request is known to be valid.
"""

from __future__ import annotations

import dataclasses
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit

import falcon
import gevent
import gevent.monkey
import msgpack
import orjson

from fastdeploy.errors import (BadRequest, LengthRequired, RequestTimeout, TooLarge, UnsupportedMediaType,
                               WrongShape)
from fastdeploy.store import scratch_root
from fastdeploy.results import json_bytes
from fastdeploy.settings import Settings
from fastdeploy.store.codec import FileInput

JSON = "application/json"
MSGPACK = "application/msgpack"
MSGPACK_TYPES = (MSGPACK, "application/x-msgpack")
MULTIPART = "multipart/form-data"
EVENT_STREAM = "text/event-stream"
OPTIONS = ("data", "timeout", "webhook", "stream")
READ_CHUNK_BYTES = 64 * 1024
SPOOL_IN_MEMORY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PredictionRequest:
    inputs: list
    timeout_s: float | None
    webhook_url: str | None
    stream: bool


def read_prediction_request(req: falcon.Request, settings: Settings) -> PredictionRequest:
    media_type = _media_type(req.content_type) or JSON
    with read_deadline(settings.body_timeout_s):
        if media_type == MULTIPART:
            fields, files = _read_multipart(req, settings)
        else:
            fields, files = _decode(media_type, _read_body(req, settings.max_body_bytes)), []
    if isinstance(fields, list):
        fields = {"data": fields}
    if not isinstance(fields, dict):
        raise WrongShape(f"body is a {type(fields).__name__}; send a list of inputs or {{\"data\": [...]}}")
    unknown = sorted(str(key) for key in fields if key not in OPTIONS)
    if unknown:
        raise WrongShape(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(OPTIONS)}")
    inputs = fields.get("data", [])
    if not isinstance(inputs, list):
        raise WrongShape("'data' must be a list of inputs")
    inputs = inputs + files
    if not inputs:
        raise WrongShape("no inputs: send a non-empty 'data' list or upload files")
    if len(inputs) > settings.max_inputs:
        raise TooLarge(f"{len(inputs)} inputs; the limit is {settings.max_inputs} (FASTDEPLOY_MAX_INPUTS)")
    timeout = fields.get("timeout", req.get_param("timeout"))
    return PredictionRequest(
        inputs=inputs,
        timeout_s=None if timeout is None else _timeout(timeout, settings),
        webhook_url=_webhook(fields.get("webhook")),
        stream=_flag(fields.get("stream", False), "stream") or EVENT_STREAM in (req.accept or ""),
    )


@contextmanager
def read_deadline(seconds: float) -> Iterator[None]:
    """Bound the time a client may take to send its body, so slow senders cannot pin workers.

    Under gevent (the server) a gevent.Timeout interrupts the blocked read; elsewhere
    (falcon's test client) bodies are already in memory and nothing can block.
    """
    if not gevent.monkey.is_module_patched("socket"):
        yield
        return
    timeout = gevent.Timeout(seconds, RequestTimeout(f"the request body took over {seconds}s to arrive "
                                                     "(FASTDEPLOY_BODY_TIMEOUT_S)"))
    timeout.start()
    try:
        yield
    finally:
        timeout.cancel()


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


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


def _refuse_extension(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not accepted")


def _decode(media_type: str, data: bytes) -> Any:
    if media_type == JSON:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from None
    if media_type in MSGPACK_TYPES:
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_refuse_extension)
        except (ValueError, msgpack.UnpackException, TypeError) as exc:
            raise BadRequest(f"body is not valid msgpack: {exc}") from None
    raise UnsupportedMediaType(f"Content-Type {media_type} is not accepted; use {JSON}, {MSGPACK} or {MULTIPART}")


def _read_multipart(req: falcon.Request, settings: Settings) -> tuple[dict, list[FileInput]]:
    """Form fields (JSON-decoded where they hold JSON) and uploaded files, in upload order."""
    limit = settings.max_upload_bytes
    if req.content_length is None:  # falcon's multipart parser needs the length up front
        raise LengthRequired("multipart uploads need a Content-Length header (chunked uploads are not accepted)")
    if req.content_length > limit:
        raise TooLarge(f"upload is {req.content_length} bytes; the limit is {limit} (FASTDEPLOY_MAX_UPLOAD_BYTES)")
    fields: dict[str, Any] = {}
    files: list[FileInput] = []
    received = 0
    for part in req.get_media():
        if part.filename is None:
            fields[part.name] = _form_value(part.name, part.text)
            continue
        if len(files) >= settings.max_inputs:
            raise TooLarge(f"more than {settings.max_inputs} files; the limit is {settings.max_inputs} "
                           "(FASTDEPLOY_MAX_INPUTS)")
        data, received = _spool(part.stream, received, limit)
        files.append(FileInput(part.filename, part.content_type or "application/octet-stream", data))
    return fields, files


def _spool(stream, received: int, limit: int) -> tuple[bytes, int]:
    """Read one uploaded file to tmpfs in chunks, stopping as soon as the upload passes its limit.

    The spool file lives only inside this function: it is gone when the upload
    ends, whether it was accepted or refused.
    """
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES, dir=scratch_root()) as spool:
        while chunk := stream.read(READ_CHUNK_BYTES):
            received += len(chunk)
            if received > limit:
                raise TooLarge(f"upload is over {limit} bytes, the limit (FASTDEPLOY_MAX_UPLOAD_BYTES)")
            spool.write(chunk)
        spool.seek(0)
        return spool.read(), received


def _form_value(name: str, text: str) -> Any:
    if name != "data":
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"form field 'data' is not valid JSON: {exc}") from None


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


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "1", "false", "0"):  # form fields are text
        return value in ("true", "1")
    raise WrongShape(f"'{name}' must be true or false")


def wants_msgpack(req: falcon.Request) -> bool:
    """msgpack when the client asks for it, or sent it and did not ask for anything else."""
    accept = (req.accept or "").lower()
    if any(media in accept for media in MSGPACK_TYPES):
        return True
    return _media_type(req.content_type) in MSGPACK_TYPES and accept in ("", "*/*")


def _msgpack_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    raise TypeError(f"{type(obj).__name__} cannot be sent as msgpack")


def write_document(req: falcon.Request, resp: falcon.Response, document: Any, status: int = 200) -> None:
    resp.status = status
    if wants_msgpack(req):
        resp.content_type = MSGPACK
        resp.data = msgpack.packb(document, use_bin_type=True, default=_msgpack_default)
    else:
        resp.content_type = JSON
        resp.data = json_bytes(document)
