"""What a "results" ring says: only "something changed", or the results that just finished.

Both stores ring the API workers when requests finish: the embedded one through its
doorbells, Redis through pub/sub. A ring that carries the finished results in full
(ids, outputs, times) spares each waiting worker a read of the store per request; a
worker asks the store about any waiting request a ring did not name (base.ResultsRing).
"""

from __future__ import annotations

import logging

from fastdeploy.store.base import DONE, RequestResult, ResultsRing, Webhook
from fastdeploy.store.codec import pack, unpack

log = logging.getLogger(__name__)

PLAIN_RING = b"!"
MAX_RING_BYTES = 64 * 1024  # results larger than this together ring plainly: waiters read them back


def finished_ring(rows: list[list]) -> bytes:
    """The ring for requests a write just finished, each row being
    [request_id, outputs, created_at, first_claimed_at, finished_at, webhook_url]."""
    if not rows or sum(len(output) for row in rows for output in row[1]) > MAX_RING_BYTES:
        return PLAIN_RING  # the outputs alone pass the limit: not packed only to be dropped
    message = pack(rows)
    return message if len(message) <= MAX_RING_BYTES else PLAIN_RING


def results_ring(messages: list[bytes]) -> ResultsRing:
    """What the rings a waiter received carry, as result() reads those requests at that moment.

    Any local process can ring a doorbell, so a message that does not decode counts as
    a plain ring.
    """
    results = []
    for message in messages:
        if message == PLAIN_RING:
            continue
        try:
            results += [RequestResult(request_id=request_id, status=DONE, outputs=outputs, failure=None,
                                      created_at=created_at, first_claimed_at=first_claimed_at,
                                      finished_at=finished_at,
                                      webhook=Webhook(webhook_url, "pending", 0, None) if webhook_url else None)
                        for request_id, outputs, created_at, first_claimed_at, finished_at, webhook_url
                        in unpack(message)]
        except Exception:
            log.debug("store: a results ring that no store sent; taken as a plain ring")
    return ResultsRing(tuple(results))
