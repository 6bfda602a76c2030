"""API and loop processes that share nothing but a Redis, as separate hosts or pods would."""

from __future__ import annotations

import os
import signal

import requests

from tests.conftest import ECHO, SLOW
from tests.e2e.test_reliability import FAST_LEASES, SLOW_1S, settle
from tests.e2e.test_serving import result, wait_for


def test_two_api_hosts_and_a_loop_host_share_one_queue(start_server, redis_namespace):
    url, namespace = redis_namespace
    shared = dict(store_url=url, store_namespace=namespace)
    first = start_server("rest", ECHO, ready="/health", **shared)
    second = start_server("rest", ECHO, ready="/health", **shared)
    start_server("loop", ECHO, ready=None, **shared)
    first.wait_ready("/ready")
    second.wait_ready("/ready")
    assert requests.post(f"{first.url}/sync", json=["a", 1], timeout=10).json()["results"] == ["a", 1]
    assert requests.post(f"{second.url}/sync", json=[{"b": 2}], timeout=10).json()["results"] == [{"b": 2}]
    request_id = requests.post(f"{first.url}/async", json=["via first"], timeout=10).json()["id"]
    answer = wait_for(lambda: (r := result(second, request_id)).status_code == 200 and r.json(),
                      what="the result, read through the other API host")
    assert answer["results"] == ["via first"]
    [loop] = requests.get(f"{second.url}/meta", timeout=10).json()["loops"]
    assert loop["stage"] == 1 and loop["items"] >= 0


def test_killed_loop_host_loses_no_request(start_server, redis_namespace):
    url, namespace = redis_namespace
    settings = dict(store_url=url, store_namespace=namespace, **FAST_LEASES)
    api = start_server("rest", SLOW, ready="/health", env=SLOW_1S, **settings)
    first_loop = start_server("loop", SLOW, ready=None, env=SLOW_1S, **settings)
    api.wait_ready("/ready")
    ids = [requests.post(f"{api.url}/async", json=[n], timeout=10).json()["id"] for n in range(8)]
    wait_for(lambda: result(api, ids[0]).json()["timings"]["queued_ms"] is not None, what="first claim")
    os.kill(first_loop.process.pid, signal.SIGKILL)  # mid-batch: the predictor sleeps 1 s
    first_loop.process.wait()
    start_server("loop", SLOW, ready=None, env=SLOW_1S, **settings)
    answers = settle(api, ids)
    assert [a["status"] for a in answers] == ["done"] * 8
    assert sorted(a["results"][0]["echo"] for a in answers) == list(range(8))
