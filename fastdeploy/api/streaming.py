"""Server-Sent Events for /sync requests that ask to stream.

Events: ``accepted`` (``{"id"}``, at once), ``chunk`` (``{"index": i, "data": ...}``,
one per streamed piece, in order), then one ``done`` (``{"id", "status", "timings"}``) or ``error``
(``{"id", "error"}``). A recipe that does not stream sends each input's whole
output as one chunk. A client that disconnects cancels its request (the
server notices at its next write); other streams are unaffected.
"""

from __future__ import annotations

import logging
import time
from typing import Iterator

from fastdeploy.api.waiter import ResultWaiter
from fastdeploy.results import json_bytes, result_document
from fastdeploy.store.base import CANCELLED, DONE, PENDING, Store
from fastdeploy.store.codec import unpack

log = logging.getLogger(__name__)


def stream_events(store: Store, waiter: ResultWaiter, request_id: str, timeout_s: float) -> Iterator[bytes]:
    """The events of one request as Server-Sent Events bytes."""
    for name, data in request_events(store, waiter, request_id, timeout_s):
        yield b"event: " + name.encode() + b"\ndata: " + json_bytes(data) + b"\n\n"


def request_events(store: Store, waiter: ResultWaiter, request_id: str,
                   timeout_s: float) -> Iterator[tuple[str, dict]]:
    """(event name, data) pairs: accepted (with the id), chunks as they are stored, then done or error."""
    deadline = time.monotonic() + timeout_s
    after, streamed, ended = 0, False, False
    yield "accepted", {"id": request_id}
    try:
        while True:
            since = waiter.rings
            finished = bool(store.finished([request_id]))
            for chunk in store.chunks(request_id, after):
                after, streamed = chunk.chunk_id, True
                yield "chunk", {"index": chunk.index, "data": unpack(chunk.data)}
            if finished:
                ended = True
                yield from _final_events(store, request_id, streamed)
                return
            remaining = deadline - time.monotonic()
            if remaining > 0:
                waiter.wait_for_change(request_id, remaining, since)
            else:
                ended = True
                yield "error", {"id": request_id, "error": {
                    "code": "timeout", "message": f"stream not finished within {timeout_s}s; "
                                                  f"poll /result/{request_id}"}}
                return
    finally:
        if not ended:  # the client went away mid-stream
            log.info("stream %s: client disconnected; cancelling", request_id)
            store.fail([request_id], CANCELLED, "the client disconnected from the stream")


def _final_events(store: Store, request_id: str, streamed: bool) -> Iterator[tuple[str, dict]]:
    result = store.result(request_id)
    if result is None:
        yield "error", {"id": request_id, "error": {"code": "not_found", "message": "result expired"}}
        return
    document = result_document(result)
    if result.status == DONE:
        if not streamed:  # a predictor that does not stream: each whole output is one chunk
            for index, output in enumerate(document["results"]):
                yield "chunk", {"index": index, "data": output}
        yield "done", {"id": request_id, "status": DONE, "timings": document["timings"]}
    elif result.status != PENDING:
        yield "error", {"id": request_id, "error": document["error"]}
