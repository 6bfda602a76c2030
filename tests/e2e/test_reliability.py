"""Crashes, overload, slow and dead peers, TLS: real processes on 127.0.0.1, bounded in time.

The invariant every crash test counts: each request the API accepted (200/202)
ends answered or failed with a reason; none is lost.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import SLOW, children
from tests.e2e.test_serving import finished, result, wait_for

SLOW_1S = {"SLOW_RECIPE_SLEEP_S": "1.0"}
FAST_LEASES = dict(lease_s=2, heartbeat_interval_s=0.5, batch_size=4, max_batch_size=4)


def descendants(pid: int) -> list[int]:
    result = []
    for child in children(pid):
        result += [child] + descendants(child)
    return result


def settle(server, ids, timeout_s=90):
    """Wait until every id is done or failed; return the final documents."""
    return [wait_for(lambda i=i: finished(server, i), timeout_s=timeout_s, what=f"result of {i}") for i in ids]


def test_killed_api_worker_loses_no_accepted_request(start_server):
    api = start_server("rest", SLOW, ready="/health", env=SLOW_1S, workers=1, **FAST_LEASES)
    start_server("loop", SLOW, ready=None, env=SLOW_1S, **FAST_LEASES)
    api.wait_ready("/ready")
    ids = [requests.post(f"{api.url}/async", json=[n], timeout=10).json()["id"] for n in range(12)]
    [worker] = children(api.process.pid)
    os.kill(worker, signal.SIGKILL)  # gunicorn starts a new worker; the queue is not in the worker
    wait_for(lambda: [pid for pid in children(api.process.pid) if pid != worker], what="replacement worker")
    answers = settle(api, ids)
    assert [a["status"] for a in answers] == ["done"] * 12
    assert sorted(a["results"][0]["echo"] for a in answers) == list(range(12))


def test_killed_process_tree_restarts_on_the_same_store(start_server):
    first = start_server("run", SLOW, env=SLOW_1S, **FAST_LEASES)
    ids = [requests.post(f"{first.url}/async", json=[n], timeout=10).json()["id"] for n in range(10)]
    wait_for(lambda: result(first, ids[0]).json()["timings"]["queued_ms"] is not None, what="first claim")
    tree = [first.process.pid] + descendants(first.process.pid)
    for pid in tree:
        os.kill(pid, signal.SIGKILL)  # mid-batch: the predictor sleeps 1 s
    first.process.wait()
    for pid in tree:
        wait_for(lambda p=pid: not Path(f"/proc/{p}").exists() or "Z" in Path(f"/proc/{p}/stat").read_text().split()[2],
                 what=f"process {pid} gone")
    second = start_server("run", SLOW, env=SLOW_1S, **FAST_LEASES)
    answers = settle(second, ids)
    done = [a for a in answers if a["status"] == "done"]
    failed = [a for a in answers if a["status"] == "failed"]
    assert len(done) + len(failed) == len(ids)  # accepted = answered + reported failed
    assert all(a["error"]["message"] for a in failed)
    assert len(done) == len(ids)  # one crash is well under max_attempts: all are answered


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def test_overload_is_refused_with_503_and_memory_stays_bounded(start_server):
    server = start_server("run", SLOW, max_queue_length=40, batch_size=8, max_batch_size=8,
                          env={"SLOW_RECIPE_SLEEP_S": "0.05"})
    accepted, refused, health_ms = [], [], []
    stop = time.monotonic() + 6

    def flood():
        session = requests.Session()
        while time.monotonic() < stop:
            response = session.post(f"{server.url}/async", json=[1, 2], timeout=10)
            if response.status_code == 202:
                accepted.append(response.json()["id"])
            else:
                assert response.status_code == 503, response.text
                assert int(response.headers["Retry-After"]) >= 1
                refused.append(response)

    def watch_health():
        while time.monotonic() < stop:
            started = time.monotonic()
            assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
            health_ms.append((time.monotonic() - started) * 1000)
            time.sleep(0.1)

    pids = [server.process.pid] + descendants(server.process.pid)
    threads = [threading.Thread(target=flood) for _ in range(16)] + [threading.Thread(target=watch_health)]
    for thread in threads[:1]:
        thread.start()
    time.sleep(1)
    warm_rss = rss_kb(pids)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert refused, "16 flooding clients never filled a 40-input queue"
    assert max(health_ms) < 1000
    assert rss_kb(pids) - warm_rss < 60 * 1024  # MiB of growth over the soak, across API, loop and supervisor
    answers = settle(server, accepted)
    assert all(a["status"] == "done" for a in answers)


def test_sync_timeout_gives_the_id_and_the_work_goes_on(start_server):
    server = start_server("run", SLOW, env=SLOW_1S, batch_size=1, max_batch_size=1)
    timed_out = requests.post(f"{server.url}/sync", json={"data": [7], "timeout": 0.3}, timeout=10)
    assert timed_out.status_code == 504
    request_id = timed_out.json()["id"]
    answer = wait_for(lambda: finished(server, request_id), what="the timed-out request's result")
    assert answer["status"] == "done" and answer["results"] == [{"echo": 7, "batch": 1}]


class HangingWebhook(http.server.ThreadingHTTPServer):
    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                time.sleep(3)  # longer than the delivery timeout

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_hanging_and_refusing_webhooks_end_as_recorded_failures(start_server):
    hanging = HangingWebhook()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refusing_url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"  # bound, never listening: refused
        server = start_server("run", SLOW, env={"SLOW_RECIPE_SLEEP_S": "0.01"}, webhook_timeout_s=0.5,
                              webhook_max_attempts=2, webhook_backoff_s=0.1)
        ids = [requests.post(f"{server.url}/async", json={"data": [n], "webhook": url}, timeout=10).json()["id"]
               for n, url in enumerate([f"http://127.0.0.1:{hanging.server_address[1]}/hook", refusing_url])]
        started = time.monotonic()
        assert requests.post(f"{server.url}/sync", json=[1], timeout=10).status_code == 200  # loop not blocked
        assert time.monotonic() - started < 2
        for request_id in ids:
            webhook = wait_for(lambda i=request_id: (finished(server, i) or {}).get("webhook", {}).get("status")
                               == "failed" and finished(server, i)["webhook"], what="webhook failure")
            assert webhook["attempts"] == 2
            assert webhook["error"]
    hanging.shutdown()


def test_slow_body_senders_get_408_and_do_not_block_others(start_server):
    server = start_server("run", SLOW, body_timeout_s=1, env={"SLOW_RECIPE_SLEEP_S": "0.01"})
    port = int(server.url.rsplit(":", 1)[1])
    slow = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /async HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n[1,")
        slow.append(sock)
    assert requests.post(f"{server.url}/sync", json=[1], timeout=5).status_code == 200
    sock = slow[0]
    sock.settimeout(5)
    answer = b""
    while chunk := sock.recv(4096):  # the server closes the connection after a 408
        answer += chunk
    assert b" 408 " in answer.split(b"\r\n", 1)[0]
    assert b"FASTDEPLOY_BODY_TIMEOUT_S" in answer
    for sock in slow:
        sock.close()


def test_api_keys_and_tls_over_real_https(start_server, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = start_server("run", SLOW, ready=None, certfile=str(cert), keyfile=str(key), api_keys="k1,k2",
                          env={"SLOW_RECIPE_SLEEP_S": "0.01"})
    https = server.url.replace("http://", "https://")
    wait_for(lambda: _ready_over_tls(https, cert), what="HTTPS /ready")
    assert requests.post(f"{https}/sync", json=[1], verify=str(cert), timeout=10).status_code == 401
    answer = requests.post(f"{https}/sync", json=[1], verify=str(cert), timeout=10,
                           headers={"Authorization": "Bearer k2"})
    assert answer.status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/health", timeout=5)  # plain HTTP is not served


def _ready_over_tls(url, cert) -> bool:
    try:
        return requests.get(f"{url}/ready", verify=str(cert), timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
