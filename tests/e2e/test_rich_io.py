"""Chained recipes, uploads, file answers and streams over real HTTP."""

from __future__ import annotations

import importlib.util
import json
import socket
import time

import pytest
import requests

from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "recipes"
RECIPES = ROOT / "recipes"


def test_chained_recipe_runs_a_loop_per_stage(start_server):
    server = start_server("run", RECIPES / "echo_chained")
    answer = requests.post(f"{server.url}/sync", json=["hi", "there"], timeout=10).json()
    assert [r["upper"] for r in answer["results"]] == ["HI", "THERE"]
    assert [r["length"] for r in answer["results"]] == [2, 5]
    meta = requests.get(f"{server.url}/meta", timeout=5).json()
    assert [(s["stage"], s["loops"]) for s in meta["stages"]] == [(1, 1), (2, 1)]
    assert meta["recipe"]["stages"] == 2


def test_ready_waits_for_every_stage(start_server):
    api = start_server("rest", RECIPES / "echo_chained", ready="/health")
    start_server("loop", RECIPES / "echo_chained", ready=None)
    deadline = time.monotonic() + 30
    while "stage(s) 2" not in requests.get(f"{api.url}/ready", timeout=5).json()["error"]["message"]:
        assert time.monotonic() < deadline, "stage 1 never reported in"
        time.sleep(0.1)
    start_server("loop", RECIPES / "echo_chained", ready=None, args=["--stage", "2"])
    api.wait_ready("/ready")
    assert requests.post(f"{api.url}/sync", json=["ok"], timeout=10).json()["results"][0]["upper"] == "OK"


def test_uploaded_files_become_inputs(start_server):
    server = start_server("run", DATA / "file_sizes", max_upload_bytes=1000)
    files = [("file", ("a.txt", b"first file", "text/plain")), ("file", ("../b.bin", b"\x00\x01", "application/x"))]
    answer = requests.post(f"{server.url}/sync", files=files, data={"data": json.dumps(["plain"])}, timeout=10)
    assert answer.status_code == 200, answer.text
    plain, first, second = answer.json()["results"]
    assert plain == {"value": "plain"}
    assert (first["size"], first["head"]) == (10, "first file")
    assert second["size"] == 2 and second["path"].endswith("-b.bin")

    too_big = requests.post(f"{server.url}/sync", files=[("file", ("big", b"x" * 2000))], timeout=10)
    assert too_big.status_code == 413
    assert "FASTDEPLOY_MAX_UPLOAD_BYTES" in too_big.json()["error"]["message"]

    broken = requests.post(f"{server.url}/sync", data=b"--xx\r\nnot a part", timeout=10,
                           headers={"Content-Type": "multipart/form-data; boundary=xx"})
    assert broken.status_code == 400
    unknown = requests.post(f"{server.url}/sync", files=files, data={"colour": "red"}, timeout=10)
    assert unknown.status_code == 422


def test_file_answers_and_refused_paths(start_server):
    server = start_server("run", DATA / "leaky_files")
    text = requests.post(f"{server.url}/sync", json=["x"], headers={"Accept": "text/plain"}, timeout=10)
    assert text.status_code == 200
    assert text.headers["Content-Type"] == "text/plain"
    assert text.content == b"file for x"
    as_json = requests.post(f"{server.url}/sync", json=["y"], timeout=10).json()["results"][0]
    assert as_json["name"] == "y.txt" and as_json["media_type"] == "text/plain"
    two = requests.post(f"{server.url}/sync", json=["x", "y"], headers={"Accept": "text/plain"}, timeout=10)
    assert two.status_code == 406
    leak = requests.post(f"{server.url}/sync", json=["leak"], timeout=10)
    assert leak.status_code == 500
    assert "outside its output folder" in leak.json()["error"]["message"]


@pytest.mark.skipif(importlib.util.find_spec("PIL") is None, reason="pillow is not installed (pip install pillow)")
def test_image_generation_answers_png(start_server):
    server = start_server("run", RECIPES / "image_generation")
    png = requests.post(f"{server.url}/sync", json=["a red square"], headers={"Accept": "image/png"}, timeout=10)
    assert png.status_code == 200
    assert png.headers["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    from PIL import Image
    import io

    assert Image.open(io.BytesIO(png.content)).size == (64, 64)


def read_events(response):
    """(event, data, arrival time) for each Server-Sent Event."""
    name = None
    for line in response.iter_lines():
        line = line.decode()
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:]), time.monotonic()


def test_stream_chunks_arrive_as_they_are_produced(start_server):
    server = start_server("run", RECIPES / "streaming_text", batch_size=4, max_batch_size=4)
    started = time.monotonic()
    with requests.post(f"{server.url}/sync", json={"data": ["a b c d e f"], "stream": True}, stream=True,
                       timeout=30) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        events = list(read_events(response))
    chunks = [e for e in events if e[0] == "chunk"]
    assert "".join(data["data"] for _, data, _ in chunks) == "you said: a b c d e f "
    assert events[-1][0] == "done"
    # 8 steps of 50 ms: the first chunk lands long before the last one
    assert chunks[-1][2] - chunks[0][2] > 0.2
    assert chunks[0][2] - started < chunks[-1][2] - started


def test_stream_of_a_plain_recipe_sends_whole_outputs(start_server):
    server = start_server("run", RECIPES / "echo")
    with requests.post(f"{server.url}/sync", json=["x", "y"], headers={"Accept": "text/event-stream"}, stream=True,
                       timeout=10) as response:
        events = [(name, data) for name, data, _ in read_events(response)]
    assert events[0][0] == "accepted"
    assert events[1:3] == [("chunk", {"index": 0, "data": "x"}), ("chunk", {"index": 1, "data": "y"})]
    assert events[3][0] == "done"


def test_disconnected_stream_is_cancelled_and_others_go_on(start_server):
    server = start_server("run", RECIPES / "streaming_text", batch_size=4, max_batch_size=4)
    long_text = " ".join(["word"] * 60)  # 3 s of streaming
    host, port = server.url.rsplit(":", 1)
    body = json.dumps({"data": [long_text], "stream": True}).encode()
    quitter = socket.create_connection(("127.0.0.1", int(port)))
    quitter.sendall(b"POST /sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    received = b""
    while b"event: chunk" not in received:
        received += quitter.recv(4096)
    quitter.close()
    request_id = json.loads(received.split(b"event: accepted\ndata: ")[1].split(b"\n")[0])["id"]
    with requests.post(f"{server.url}/sync", json={"data": ["still here"], "stream": True}, stream=True,
                       timeout=30) as response:
        events = list(read_events(response))
    assert events[-1][0] == "done"
    assert "".join(d["data"] for n, d, _ in events if n == "chunk") == "you said: still here "
    deadline = time.monotonic() + 10
    while (cancelled := requests.get(f"{server.url}/result/{request_id}", timeout=5).json())["status"] == "pending":
        assert time.monotonic() < deadline, "the abandoned stream was never cancelled"
        time.sleep(0.1)
    assert cancelled["error"]["code"] == "cancelled"
