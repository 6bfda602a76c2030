"""The falcon app around a real store, with a real loop serving it from a thread."""

from __future__ import annotations

import threading
import time

import falcon.testing
import msgpack
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fastdeploy.api.app import create_app, recipe_info
from fastdeploy.loop import Loop
from fastdeploy.recipe import load_recipe
from fastdeploy.settings import Settings
from tests.conftest import ECHO, SLOW


def serve(make_store, recipe_path, settings, loop=True):
    store = make_store(max_queue_length=settings.max_queue_length)
    app = create_app(settings, store, recipe_info(recipe_path),
                     new_id=iter(f"id{n}" for n in range(10**6)).__next__)
    client = falcon.testing.TestClient(app)
    if loop:
        worker = Loop(load_recipe(recipe_path), make_store(), settings)
        worker.prepare()  # here, not in the thread: CPython 3.11.7 cannot compile in two threads at once
        thread = threading.Thread(target=worker.serve, daemon=True)
        thread.start()
        client.loop_thread, client.loop = thread, worker
    return client


@pytest.fixture
def echo(make_store):
    client = serve(make_store, ECHO, Settings(batch_size=8, max_batch_size=8, max_inputs=5,
                                              max_body_bytes=2000, timeout_s=5))
    yield client
    client.loop.stop()
    client.loop_thread.join(5)


@pytest.fixture
def queue_only(make_store):
    """An API whose queue nobody serves, with room for 3 inputs."""
    return serve(make_store, ECHO, Settings(max_queue_length=3, timeout_s=0.2), loop=False)


def test_sync_returns_results_in_order_with_timings(echo):
    response = echo.simulate_post("/sync", json=["a", {"b": [1, 2]}, 3])
    assert response.status_code == 200
    assert response.json["id"] == "id0"
    assert response.json["results"] == ["a", {"b": [1, 2]}, 3]
    assert response.json["timings"]["total_ms"] >= 0


def test_data_object_form_is_accepted(echo):
    assert echo.simulate_post("/sync", json={"data": [1], "timeout": 3}).json["results"] == [1]


def test_msgpack_in_and_out(echo):
    body = msgpack.packb([b"\x00bytes", 1.5])
    response = echo.simulate_post("/sync", body=body, headers={"Content-Type": "application/msgpack"})
    assert response.headers["content-type"] == "application/msgpack"
    assert msgpack.unpackb(response.content)["results"] == [b"\x00bytes", 1.5]


def test_json_answer_to_msgpack_request_when_asked(echo):
    response = echo.simulate_post("/sync", body=msgpack.packb([b"\x01"]),
                                  headers={"Content-Type": "application/msgpack", "Accept": "application/json"})
    assert response.json["results"] == ["AQ=="]  # bytes become base64 in JSON


def test_async_then_result(echo):
    accepted = echo.simulate_post("/async", json=[7])
    assert accepted.status_code == 202
    assert accepted.json["result_url"] == f"/result/{accepted.json['id']}"
    echo.loop_thread.join(0.5)
    for _ in range(100):
        result = echo.simulate_get(accepted.json["result_url"])
        if result.status_code == 200:
            break
        assert result.status_code == 202
        echo.loop_thread.join(0.05)
    assert result.json["results"] == [7]


@pytest.mark.parametrize("kwargs, status, code", [
    (dict(body=b"[1,", headers={"Content-Type": "application/json"}), 400, "bad_request"),
    (dict(body=b"", headers={"Content-Type": "application/json"}), 400, "bad_request"),
    (dict(body=b"\xc1", headers={"Content-Type": "application/msgpack"}), 400, "bad_request"),
    (dict(body=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
     "unsupported_media_type"),
    (dict(json="text"), 422, "wrong_shape"),
    (dict(json=[]), 422, "wrong_shape"),
    (dict(json={"inputs": [1]}), 422, "wrong_shape"),
    (dict(json={"data": 5}), 422, "wrong_shape"),
    (dict(json={"data": [1], "timeout": "soon"}), 422, "wrong_shape"),
    (dict(json={"data": [1], "timeout": -1}), 422, "wrong_shape"),
    (dict(json={"data": [1], "webhook": "ftp://x"}), 422, "wrong_shape"),
    (dict(json=[1] * 6), 413, "too_large"),
    (dict(json=["x" * 3000]), 413, "too_large"),
])
@pytest.mark.parametrize("path", ["/sync", "/async"])
def test_bad_input_gets_a_json_error(echo, path, kwargs, status, code):
    response = echo.simulate_post(path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]


def test_too_many_inputs_names_the_limit(echo):
    message = echo.simulate_post("/sync", json=[1] * 6).json["error"]["message"]
    assert message == "6 inputs; the limit is 5 (FASTDEPLOY_MAX_INPUTS)"


def test_unknown_id_and_route_are_404_json(echo):
    assert echo.simulate_get("/result/nope").json["error"]["code"] == "not_found"
    assert echo.simulate_get("/nowhere").json["error"]["code"] == "not_found"
    assert echo.simulate_get("/sync").status_code == 405


def test_full_queue_is_503_with_retry_after(queue_only):
    assert queue_only.simulate_post("/async", json=[1, 2]).status_code == 202
    refused = queue_only.simulate_post("/async", json=[1, 2])
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json["error"]["code"] == "queue_full"


def test_sync_timeout_is_504_with_the_id_to_poll(queue_only):
    response = queue_only.simulate_post("/sync", json=[1])
    assert response.status_code == 504
    assert response.json["id"] == "id0"
    assert queue_only.simulate_get("/result/id0").status_code == 202


def test_not_ready_while_no_loop_serves(queue_only):
    assert queue_only.simulate_get("/ready").status_code == 503
    assert queue_only.simulate_get("/ready").json["error"]["code"] == "not_ready"
    assert queue_only.simulate_get("/health").json == {"status": "ok"}


def test_ready_once_a_loop_serves(echo):
    assert echo.simulate_get("/ready").json == {"status": "ready", "loops": 1}


def test_meta_shows_recipe_batch_size_settings_and_queue(echo):
    echo.simulate_post("/sync", json=[1])
    meta = echo.simulate_get("/meta").json
    assert meta["recipe"]["name"] == "echo"
    assert meta["batch_size"] == 8
    assert meta["settings"]["max_inputs"] == 5
    assert meta["versions"]["fastdeploy"]
    # the answer may reach the caller just before the loop commits it (store/local.py): bounded wait
    for _ in range(100):
        if meta["queue_length"] == 0:
            break
        time.sleep(0.01)
        meta = echo.simulate_get("/meta").json
    assert meta["queue_length"] == 0


@pytest.fixture
def slow(make_store):
    client = serve(make_store, SLOW, Settings(batch_size=4, max_batch_size=4, timeout_s=10))
    yield client
    client.loop.stop()
    client.loop_thread.join(5)


def test_predictor_exception_fails_only_that_request_and_loop_keeps_serving(slow):
    failed = slow.simulate_post("/sync", json=["raise"])
    assert failed.status_code == 500
    assert failed.json["error"]["code"] == "predictor_failed"
    assert "ValueError: asked to raise" in failed.json["error"]["message"]
    assert slow.simulate_get(f"/result/{failed.json['id']}").json["status"] == "failed"
    assert slow.simulate_post("/sync", json=[1]).json["results"] == [{"echo": 1, "batch": 1}]


def test_wrong_length_answer_is_reported(slow):
    failed = slow.simulate_post("/sync", json=[1, "short"])
    assert failed.status_code == 500
    assert "returned 1 outputs for 2 inputs" in failed.json["error"]["message"]


def test_metrics_count_what_the_loops_served(echo):
    for n in range(3):
        echo.simulate_post("/sync", json=[n, n])
    for _ in range(100):  # the loop thread counts a batch just after the answer is visible
        if echo.loop.served["items"] == 6:
            break
        echo.loop_thread.join(0.01)
    echo.loop.store.heartbeat(echo.loop.info())  # what the heartbeat thread sends every second
    text = echo.simulate_get("/metrics")
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text.text)}
    [items] = families["fastdeploy_items"].samples
    assert items.value == 6 and items.labels["stage"] == "1"
    assert families["fastdeploy_batches"].samples[0].value >= 3
    assert families["fastdeploy_queue_length"].samples[0].value == 0
    assert families["fastdeploy_batch_size"].samples[0].value == 8
    assert families["fastdeploy_predict_seconds"].samples[0].value > 0


def test_meta_and_metrics_show_the_live_batching_choice(make_store):
    client = serve(make_store, ECHO, Settings(max_batch_size=8, target_p99_ms=40, timeout_s=5))
    try:
        assert client.simulate_post("/sync", json=[1, 2, 3]).json["results"] == [1, 2, 3]
        client.loop.store.heartbeat(client.loop.info())
        [loop] = client.simulate_get("/meta").json["loops"]
        assert loop["batching"]["policy"] == "target_p99" and loop["batching"]["target_p99_ms"] == 40
        assert 1 <= loop["batch_size"] <= 8
        families = {f.name: f for f in text_string_to_metric_families(client.simulate_get("/metrics").text)}
        assert families["fastdeploy_batch_size"].samples[0].value == loop["batch_size"]
        wait = families["fastdeploy_batch_wait_seconds"].samples[0].value
        assert wait == pytest.approx(loop["batching"]["wait_ms"] / 1000) and wait < 0.040
    finally:
        client.loop.stop()
        client.loop_thread.join(5)
