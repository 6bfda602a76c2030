"""The document a client sees for a request, the same on /sync, /result and webhooks."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from fastdeploy.store.base import DONE, FAILED, RequestResult
from fastdeploy.store.codec import unpack


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 3)


def result_document(result: RequestResult) -> dict[str, Any]:
    document: dict[str, Any] = {"id": result.request_id, "status": result.status}
    if result.status == DONE:
        document["results"] = [unpack(output) for output in result.outputs]
    elif result.status == FAILED:
        document["error"] = {"code": result.failure.code, "message": result.failure.message}
    document["timings"] = {
        "queued_ms": _ms(result.created_at, result.first_claimed_at),
        "processing_ms": _ms(result.first_claimed_at, result.finished_at),
        "total_ms": _ms(result.created_at, result.finished_at),
    }
    if result.webhook is not None:
        document["webhook"] = {"url": result.webhook.url, "status": result.webhook.status,
                               "attempts": result.webhook.attempts, "error": result.webhook.error}
    return document


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def json_bytes(document: Any) -> bytes:
    """JSON via orjson; bytes become base64 strings since JSON has no bytes."""
    return orjson.dumps(document, default=_json_default,
                        option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
