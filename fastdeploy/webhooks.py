"""Deliver finished async results to the webhook their request named.

Deliveries are driven by the store, not by memory: a finished request with a
webhook is "due", a sender claims it for a while, POSTs the result and records
the outcome. A sender that dies mid-delivery loses nothing; the delivery is
due again when its claim lapses. Failed deliveries back off exponentially up
to ``webhook_max_attempts`` and then stay visible as failed in /result.

Receivers verify ``X-FastDeploy-Signature: t=<unix time>,v1=<hex>`` where
hex = HMAC-SHA256(secret, "<t>." + body), and drop repeats by
``X-FastDeploy-Delivery`` (the request id).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import requests

from fastdeploy.results import json_bytes, result_document
from fastdeploy.settings import Settings
from fastdeploy.store.base import Store, WebhookJob

log = logging.getLogger(__name__)

CONCURRENT_DELIVERIES = 8
IDLE_POLL_S = 0.05


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookSender:
    def __init__(self, store: Store, settings: Settings, *, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.session = session or requests.Session()
        self.clock = clock

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; deliveries in progress finish first."""
        claim_s = self.settings.webhook_timeout_s * 2 + 5
        with ThreadPoolExecutor(CONCURRENT_DELIVERIES, thread_name_prefix="webhook") as pool:
            while not stop.is_set():
                try:
                    jobs = self.store.due_webhooks(CONCURRENT_DELIVERIES, claim_s)
                except Exception:
                    log.exception("webhooks: could not read due deliveries")
                    jobs = []
                if not jobs:
                    stop.wait(IDLE_POLL_S)
                    continue
                for _ in pool.map(self.deliver, jobs):
                    pass

    def deliver(self, job: WebhookJob) -> bool:
        result = self.store.result(job.request_id)
        if result is None:
            return False
        body = json_bytes(result_document(result))
        headers = {"Content-Type": "application/json", "X-FastDeploy-Delivery": job.request_id}
        if self.settings.webhook_secret:
            headers["X-FastDeploy-Signature"] = sign(self.settings.webhook_secret, int(self.clock()), body)
        error = None
        try:
            response = self.session.post(job.url, data=body, headers=headers, timeout=self.settings.webhook_timeout_s)
            if 200 <= response.status_code < 300:
                self.store.record_webhook(job.request_id, delivered=True, error=None, retry_at=None)
                return True
            error = f"{job.url} answered {response.status_code}"
        except requests.RequestException as exc:
            error = f"{job.url} failed: {type(exc).__name__}: {exc}"
        attempt = job.attempts + 1
        retry_at = None
        if attempt < self.settings.webhook_max_attempts:
            retry_at = self.clock() + self.settings.webhook_backoff_s * 2 ** (attempt - 1)
        log.warning("webhooks: delivery %d of %s failed (%s)%s", attempt, job.request_id, error,
                    "" if retry_at else "; giving up")
        self.store.record_webhook(job.request_id, delivered=False, error=error, retry_at=retry_at)
        return False
