"""The contract between the API and the loops: a queue of inputs and a table of results.

Every backend (embedded SQLite, Redis) implements ``Store`` and passes the same
contract tests. Payloads cross the store as bytes (see ``codec``), so a backend
never needs to understand what a predictor takes or returns.

Delivery is at-least-once: a claimed item carries a lease, and an item whose
lease ran out (its loop died) is claimed again, up to ``max_attempts``; the
first completion of an item wins, so no request is answered twice.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

PENDING = "pending"
DONE = "done"
FAILED = "failed"

# Failure codes a store records; the API maps them to HTTP statuses.
PREDICTOR_FAILED = "predictor_failed"
DEADLINE_EXCEEDED = "deadline_exceeded"
ATTEMPTS_EXHAUSTED = "attempts_exhausted"
CANCELLED = "cancelled"


class StoreClosedError(Exception):
    """The store was closed while (or before) this call used it."""


class IdempotencyConflict(Exception):
    """An idempotency key was used before with a different request."""

    def __init__(self, key: str, request_id: str) -> None:
        super().__init__(f"idempotency key {key!r} was used for request {request_id} with a different body")
        self.key, self.request_id = key, request_id


class QueueFullError(Exception):
    def __init__(self, queued: int, asked: int, limit: int) -> None:
        super().__init__(f"{queued} inputs queued, {asked} more asked; the limit is {limit}")
        self.queued, self.asked, self.limit = queued, asked, limit


# What enqueue_many gives back per request: its id (or the earlier one), or why it was refused.
EnqueueOutcome = str | QueueFullError | IdempotencyConflict


@dataclass(frozen=True)
class NewRequest:
    """A request to queue, as ``Store.enqueue`` takes it: one of several ``enqueue_many`` queues together."""

    request_id: str
    payloads: list[bytes]
    deadline: float | None = None
    webhook_url: str | None = None
    stages: int = 1
    idempotency_key: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class QueueItem:
    """One input of one request, as a loop claims it."""

    item_id: int
    request_id: str
    index: int
    payload: bytes
    attempts: int
    deadline: float | None
    stage: int = 1
    last_stage: int = 1
    created_at: float | None = None  # when its request was accepted: its age tells a loop how late it is
    # What a store may use to answer the request's waiters before it commits the outputs (local.py):
    request_inputs: int | None = None  # how many inputs its request has
    first_claimed_at: float | None = None
    webhook_url: str | None = None
    lease_until: float | None = None  # as this claim leased it: no other loop can take it before then


@dataclass(frozen=True)
class Chunk:
    """One streamed piece of one input's output; chunk_id orders all chunks of a request."""

    chunk_id: int
    index: int
    data: bytes


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


@dataclass(frozen=True)
class Webhook:
    url: str
    status: str | None = None  # None until the request finishes, then pending | delivered | failed
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True)
class RequestResult:
    request_id: str
    status: str  # PENDING | DONE | FAILED
    outputs: list[bytes] | None
    failure: Failure | None
    created_at: float
    first_claimed_at: float | None
    finished_at: float | None
    webhook: Webhook | None = None


@dataclass(frozen=True)
class ResultsRing:
    """A wake-up from ``wait_for_results``: some request may have finished or streamed.

    ``results`` are requests the ring says finished, exactly as ``result()`` read them
    right after, so a waiter can answer without reading them back. A store may carry
    some, all or none of them; a waiter asks ``finished()`` about the others.
    """

    results: tuple[RequestResult, ...] = ()


@dataclass(frozen=True)
class WebhookJob:
    """A finished request whose webhook is due for a delivery attempt."""

    request_id: str
    url: str
    attempts: int


@dataclass(frozen=True)
class LoopInfo:
    """What a loop reports about itself; /ready and /meta read these."""

    loop_id: str
    stage: int
    pid: int
    host: str
    batch_size: int
    started_at: float
    heartbeat_at: float
    tuning: list[dict[str, Any]] = field(default_factory=list)
    batching: dict[str, Any] = field(default_factory=dict)  # the policy's current choice (batching.py)
    batches: int = 0  # since the loop started: served batches, inputs in them, time inside the predictor
    items: int = 0
    failed_batches: int = 0
    predict_s: float = 0.0


class Store(abc.ABC):
    """Queue plus results. All methods are safe across threads and processes."""

    def enqueue(self, request_id: str, payloads: list[bytes], *, deadline: float | None = None,
                webhook_url: str | None = None, stages: int = 1, idempotency_key: str | None = None,
                fingerprint: str | None = None) -> str:
        """Queue all inputs of a request atomically for stage 1 of ``stages``; return the request's id.

        Raises QueueFullError past the limit. With an idempotency key already used for a
        request whose result still lives, nothing is queued: the earlier id is returned when
        ``fingerprint`` matches, IdempotencyConflict is raised when it does not.
        """
        [outcome] = self.enqueue_many([NewRequest(request_id, payloads, deadline, webhook_url, stages,
                                                  idempotency_key, fingerprint)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @abc.abstractmethod
    def enqueue_many(self, requests: list[NewRequest]) -> list[EnqueueOutcome]:
        """Queue several requests, each as ``enqueue`` would; one outcome per request, in order.

        An outcome is the request's id (or the earlier one), or the error ``enqueue`` would
        raise for it: a request refused never refuses the others. Most of what an enqueue
        costs is per call (the local store's transaction, a Redis round trip), so a store
        queues them all in one.
        """

    @abc.abstractmethod
    def claim(self, max_items: int, lease_s: float, stage: int = 1) -> list[QueueItem]:
        """Take up to max_items queued inputs of a stage, oldest first, leased for lease_s.

        Also re-queues inputs whose lease ran out, fails those past max_attempts,
        and fails queued inputs whose deadline passed, so their slots go to live work.
        """

    @abc.abstractmethod
    def renew(self, item_ids: list[int], lease_s: float) -> None:
        """Extend the lease of inputs still being predicted."""

    @abc.abstractmethod
    def complete(self, items: list[QueueItem], outputs: list[bytes]) -> None:
        """Store one output per item. Before the last stage the output becomes the input of the
        next stage; a request finishes when all its inputs passed the last stage.

        A store may hand a finished request's result to its waiters just before it commits
        it (the local store does: the commit leaves the reply path), but only for items on
        their first claim whose lease still holds, so no other loop can complete them first
        and the commit stores what the waiters got. If the writer dies in between, the
        inputs are claimed again once their lease runs out, as after any crash of a loop."""

    @abc.abstractmethod
    def fail(self, request_ids: list[str], code: str, message: str) -> None:
        """Fail these requests if still pending; their other inputs are not predicted."""

    @abc.abstractmethod
    def add_chunks(self, items: list[QueueItem], chunks: list[bytes | None]) -> None:
        """Append one streamed chunk per item (None: nothing new for that item)."""

    @abc.abstractmethod
    def chunks(self, request_id: str, after_chunk_id: int = 0) -> list[Chunk]:
        """Chunks of a request newer than after_chunk_id, in the order they were added."""

    @abc.abstractmethod
    def result(self, request_id: str) -> RequestResult | None:
        """The request's state, or None when unknown or expired."""

    @abc.abstractmethod
    def finished(self, request_ids: list[str]) -> set[str]:
        """Which of these requests are done or failed (cheap: for waiters)."""

    @abc.abstractmethod
    def queue_length(self) -> int:
        """Inputs queued or being predicted."""

    @abc.abstractmethod
    def waiting(self, stage: int = 1) -> int:
        """Inputs of a stage queued and not claimed: a read, so a loop can watch its batch fill
        without taking the write lock for each arrival. A hint: another loop may claim them first."""

    @abc.abstractmethod
    def wait_for_results(self, timeout_s: float) -> ResultsRing | None:
        """Block until a request may have finished or streamed since the last call, or timeout_s passed (None)."""

    @abc.abstractmethod
    def stop_waiting_for_results(self) -> None:
        """This process waits for no result for now: the store stops waking it and keeping rings
        for it. The next ``wait_for_results`` listens again; what finished in between is not rung
        to it, so a waiter asks ``finished()`` after it starts listening again."""

    @abc.abstractmethod
    def wait_for_work(self, timeout_s: float, stage: int = 1) -> bool:
        """Block until inputs of a stage may have been queued since the last call (True) or timeout_s passed."""

    @abc.abstractmethod
    def heartbeat(self, info: LoopInfo) -> None:
        """Record that a loop is alive."""

    @abc.abstractmethod
    def remove_loop(self, loop_id: str) -> None:
        """Forget a loop that stopped cleanly."""

    @abc.abstractmethod
    def loops(self) -> list[LoopInfo]:
        """Every loop that reported itself, newest heartbeat first."""

    @abc.abstractmethod
    def due_webhooks(self, limit: int, lease_s: float) -> list[WebhookJob]:
        """Claim webhook deliveries that are due; a claimed one is not handed out again for lease_s."""

    @abc.abstractmethod
    def record_webhook(self, request_id: str, *, delivered: bool, error: str | None,
                       retry_at: float | None) -> None:
        """Record a delivery attempt; retry_at schedules another, None ends the webhook."""

    @abc.abstractmethod
    def sweep(self) -> int:
        """Delete results past their lifetime and dead loops' records; return requests deleted."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and handles."""
