"""Real fastdeploy processes, real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import pytest
import requests

from tests.conftest import ECHO, SLOW, children, free_port, write_recipe


def wait_for(predicate, timeout_s: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


def result(server, request_id):
    return requests.get(f"{server.url}/result/{request_id}", timeout=5)


def finished(server, request_id):
    response = result(server, request_id)
    return response.json() if response.status_code == 200 else None


def test_run_serves_sync_async_and_meta(start_server):
    server = start_server("run", ECHO)
    inputs = [{"n": n} for n in range(50)]
    sync = requests.post(f"{server.url}/sync", json=inputs, timeout=10)
    assert sync.status_code == 200
    assert sync.json()["results"] == inputs  # client-side batch, order kept

    packed = requests.post(f"{server.url}/sync", data=msgpack.packb({"data": [b"raw"]}),
                           headers={"Content-Type": "application/msgpack"}, timeout=10)
    assert msgpack.unpackb(packed.content)["results"] == [b"raw"]

    accepted = requests.post(f"{server.url}/async", json=["later"], timeout=10)
    assert accepted.status_code == 202
    done = wait_for(lambda: finished(server, accepted.json()["id"]), what="async result")
    assert done["results"] == ["later"]

    meta = requests.get(f"{server.url}/meta", timeout=5).json()
    assert meta["recipe"]["name"] == "echo"
    assert meta["batch_size"] >= 1
    assert meta["loops"][0]["tuning"]  # timings the tuner measured


def test_concurrent_sync_requests_are_batched_and_all_answered(start_server):
    server = start_server("run", SLOW, batch_size=16, max_batch_size=16, env={"SLOW_RECIPE_SLEEP_S": "0.05"},
                          max_wait_ms=20)
    answers = {}

    def call(n):
        answers[n] = requests.post(f"{server.url}/sync", json=[n], timeout=30).json()["results"][0]

    threads = [threading.Thread(target=call, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a["echo"] for a in answers.values()) == list(range(40))
    assert max(a["batch"] for a in answers.values()) > 1


class WebhookListener(http.server.ThreadingHTTPServer):
    """Records every delivery; refuses the first `refuse` ones with 500."""

    def __init__(self, refuse: int = 0):
        self.deliveries = []
        self.refuse = refuse
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                listener.deliveries.append((dict(self.headers), body))
                status = 500 if len(listener.deliveries) <= listener.refuse else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_async_webhook_is_signed_and_retried(start_server):
    listener = WebhookListener(refuse=1)
    try:
        server = start_server("run", ECHO, webhook_secret="topsecret", webhook_backoff_s=0.1)
        accepted = requests.post(f"{server.url}/async", json={"data": ["hook me"], "webhook": listener.url},
                                 timeout=10).json()
        wait_for(lambda: len(listener.deliveries) >= 2, what="webhook retry")
        headers, body = listener.deliveries[-1]
        assert headers["X-FastDeploy-Delivery"] == accepted["id"]
        timestamp, signature = (part.split("=", 1)[1] for part in headers["X-FastDeploy-Signature"].split(","))
        expected = hmac.new(b"topsecret", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, expected)
        assert requests.compat.json.loads(body)["results"] == ["hook me"]
        webhook = wait_for(lambda: finished(server, accepted["id"])["webhook"]["status"] == "delivered"
                           and finished(server, accepted["id"])["webhook"], what="delivery recorded")
        assert webhook["attempts"] == 2
    finally:
        listener.shutdown()


def test_killed_loop_loses_no_accepted_request(start_server):
    slow = dict(env={"SLOW_RECIPE_SLEEP_S": "1.0"}, batch_size=4, max_batch_size=4, lease_s=2, heartbeat_interval_s=0.5)
    api = start_server("rest", SLOW, ready="/health", **slow)
    loop = start_server("loop", SLOW, ready=None, **slow)
    api.wait_ready("/ready")
    ids = [requests.post(f"{api.url}/async", json=[n], timeout=10).json()["id"] for n in range(10)]
    wait_for(lambda: result(api, ids[0]).json()["timings"]["queued_ms"] is not None, what="first batch claimed")
    os.kill(loop.process.pid, signal.SIGKILL)  # mid-batch: the predictor sleeps 1 s
    loop.process.wait()
    start_server("loop", SLOW, ready=None, **slow)
    answers = [wait_for(lambda i=i: finished(api, i), timeout_s=60, what=f"result of {i}") for i in ids]
    assert [a["status"] for a in answers] == ["done"] * 10
    assert sorted(a["results"][0]["echo"] for a in answers) == list(range(10))


PACED_THEN_SLOW = """import time

calls = 0


def predictor(inputs, batch_size):
    global calls
    calls += 1  # the smoke test and the first batch are quick, later batches slow
    time.sleep(0.2 if calls <= 2 else 2.0)
    return [x * 10 for x in inputs]
"""


def test_killed_loop_loses_no_request_it_had_claimed_ahead(start_server, tmp_path):
    """Killed while a full batch predicts and the next is already claimed: both are answered by the next loop."""
    recipe = write_recipe(tmp_path / "paced", predictor=PACED_THEN_SLOW)
    settings = dict(batch_size=4, max_batch_size=4, lease_s=2, heartbeat_interval_s=0.5)
    api = start_server("rest", recipe, ready="/health", **settings)
    ids = [requests.post(f"{api.url}/async", json=[n], timeout=10).json()["id"] for n in range(16)]
    loop = start_server("loop", recipe, ready=None, **settings)  # queued first, so batches are 0-3, 4-7, 8-11

    def claimed() -> int:
        return sum(result(api, i).json()["timings"]["queued_ms"] is not None for i in ids)

    wait_for(lambda: claimed() >= 12, what="a third batch claimed while the second predicts")
    assert finished(api, ids[4]) is None  # the second batch is still predicting: the third was claimed ahead
    os.kill(loop.process.pid, signal.SIGKILL)
    loop.process.wait()
    start_server("loop", recipe, ready=None, **settings)
    answers = [wait_for(lambda i=i: finished(api, i), timeout_s=60, what=f"result of {i}") for i in ids]
    assert [a["status"] for a in answers] == ["done"] * 16
    assert [a["results"][0] for a in answers] == [10 * n for n in range(16)]


def test_restarted_api_still_serves_async_results(start_server):
    api = start_server("rest", ECHO, ready="/health")
    start_server("loop", ECHO, ready=None)
    api.wait_ready("/ready")
    request_id = requests.post(f"{api.url}/async", json=["kept"], timeout=10).json()["id"]
    wait_for(lambda: finished(api, request_id), what="async result")
    assert api.stop() == 0
    again = start_server("rest", ECHO, ready="/health")
    assert result(again, request_id).json()["results"] == ["kept"]


def test_sigterm_lets_the_running_batch_finish(start_server):
    api = start_server("rest", SLOW, ready="/health")
    loop = start_server("loop", SLOW, ready=None, env={"SLOW_RECIPE_SLEEP_S": "1.0"}, batch_size=2, max_batch_size=2)
    api.wait_ready("/ready")
    request_id = requests.post(f"{api.url}/async", json=[1], timeout=10).json()["id"]
    wait_for(lambda: result(api, request_id).json()["timings"]["queued_ms"] is not None, what="claim")
    assert loop.stop() == 0
    assert finished(api, request_id)["results"] == [{"echo": 1, "batch": 1}]


def test_broken_recipe_stops_run_with_a_clear_message(tmp_path):
    recipe = write_recipe(tmp_path / "broken", predictor="def predictor(inputs, batch_size):\n    return inputs[:1]\n",
                          example="example = [1, 2]\n")
    env = {**os.environ, "FASTDEPLOY_STORE_DIR": str(tmp_path / "q"), "FASTDEPLOY_PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-m", "fastdeploy", "--run", str(recipe)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "returned 1 outputs for 2 inputs" in done.stderr
    assert "broken/predictor.py" in done.stderr


def test_bad_input_over_real_http_never_500_or_hangs(start_server):
    server = start_server("run", SLOW, max_body_bytes=4000, max_inputs=4, env={"SLOW_RECIPE_SLEEP_S": "0.01"})
    json_header = {"Content-Type": "application/json"}
    cases = [
        (dict(data=b'{"data": [1,', headers=json_header), 400),
        (dict(data=b"[" * 5000 + b"]" * 5000, headers=json_header), 413),
        (dict(data=b"[" * 1500 + b"]" * 1500, headers=json_header), 400),  # deeper than any parser should go
        (dict(data=b"\x93\x01", headers={"Content-Type": "application/msgpack"}), 400),
        (dict(data=b"<xml/>", headers={"Content-Type": "text/xml"}), 415),
        (dict(data=(b"x" for _ in range(5000)), headers=json_header), 413),  # chunked, no Content-Length
        (dict(json={"data": [1, 2, 3, 4, 5]}), 413),
        (dict(json={"data": [1], "webhook": "javascript:alert(1)"}), 422),
    ]
    for kwargs, status in cases:
        response = requests.post(f"{server.url}/sync", timeout=10, **kwargs)
        assert response.status_code == status, (kwargs, response.text)
        assert response.json()["error"]["message"]
    chunked = requests.post(f"{server.url}/sync", data=iter([b"[1", b", 2]"]), headers=json_header, timeout=10)
    assert [r["echo"] for r in chunked.json()["results"]] == [1, 2]
    failed = requests.post(f"{server.url}/sync", json=["raise"], timeout=10)
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "predictor_failed"
    assert requests.post(f"{server.url}/sync", json=[1], timeout=10).status_code == 200


def test_several_api_workers_and_loops_share_one_queue(start_server):
    api = start_server("rest", SLOW, ready="/health", workers=2)
    for _ in range(2):
        start_server("loop", SLOW, ready=None, batch_size=4, max_batch_size=4, env={"SLOW_RECIPE_SLEEP_S": "0.05"})
    wait_for(lambda: requests.get(f"{api.url}/ready", timeout=5).json().get("loops") == 2, what="two loops")
    answers = []

    def call(n):
        session = requests.Session()  # its own connection, so both workers get traffic
        for k in range(5):
            answers.append(session.post(f"{api.url}/sync", json=[n * 10 + k], timeout=30).json()["results"][0])

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a["echo"] for a in answers) == sorted(n * 10 + k for n in range(8) for k in range(5))
    assert len({loop["pid"] for loop in requests.get(f"{api.url}/meta", timeout=5).json()["loops"]}) == 2


def tcp_sockets_on(port: int, state: str) -> set[str]:
    """Inodes of the server's sockets on a port in a /proc/net/tcp state (0A listening, 01 established)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            found.add(fields[9])
    return found


def socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:["):-1])
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; SO_REUSEPORT spreads only on Linux")
def test_a_burst_of_keep_alive_connections_is_spread_over_the_api_workers(start_server):
    server = start_server("rest", ECHO, ready="/health", workers=2)
    port = int(server.url.rsplit(":", 1)[1])

    def both_workers_listen() -> bool:
        workers = children(server.process.pid)
        return len(workers) == 2 and all(socket_inodes(w) & tcp_sockets_on(port, "0A") for w in workers)

    wait_for(both_workers_listen, what="both workers listening")
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(16)]
    try:
        for connection in connections:
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: fastdeploy\r\n\r\n")
        for connection in connections:
            assert connection.recv(4096).startswith(b"HTTP/1.1 200")
        established = tcp_sockets_on(port, "01")
        held = [len(socket_inodes(worker) & established) for worker in children(server.process.pid)]
    finally:
        for connection in connections:
            connection.close()
    assert sum(held) == 16
    assert min(held) >= 2, held  # on one shared socket a burst mostly lands on one worker (16/0)


def test_a_second_server_on_a_taken_port_stops_with_a_clear_message(start_server, tmp_path):
    first = start_server("run", ECHO)
    port = first.url.rsplit(":", 1)[1]
    env = {**os.environ, "FASTDEPLOY_STORE_DIR": str(tmp_path / "other"), "FASTDEPLOY_PORT": port}
    done = subprocess.run([sys.executable, "-m", "fastdeploy", "--run", str(ECHO)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "another server listens there" in done.stderr
    assert requests.post(f"{first.url}/sync", json=["still mine"], timeout=10).json()["results"] == ["still mine"]
