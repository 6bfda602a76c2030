"""API keys, idempotency, refused formats and the OpenAPI description, on the in-process app."""

from __future__ import annotations

import falcon.testing
import msgpack
import pytest

from fastdeploy.api.app import create_app, recipe_info
from fastdeploy.settings import Settings
from tests.conftest import ECHO


def client_for(make_store, **settings):
    settings = Settings(**settings)
    return falcon.testing.TestClient(create_app(settings, make_store(), recipe_info(ECHO)))


@pytest.fixture
def locked(make_store):
    return client_for(make_store, api_keys="first-key, second-key")


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": "Basic Zmlyc3Qta2V5"},
                                     {"Authorization": "Bearer "}, bearer("first-key-and-more")])
def test_requests_without_a_valid_key_get_401(locked, headers):
    response = locked.simulate_post("/async", json=[1], headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert locked.simulate_get("/meta", headers=headers).status_code == 401


@pytest.mark.parametrize("key", ["first-key", "second-key"])
def test_every_configured_key_is_accepted(locked, key):
    assert locked.simulate_post("/async", json=[1], headers=bearer(key)).status_code == 202


def test_probes_stay_open_and_meta_hides_the_keys(locked):
    assert locked.simulate_get("/health").status_code == 200
    assert locked.simulate_get("/ready").status_code == 503  # open, just not ready: no loop here
    meta = locked.simulate_get("/meta", headers=bearer("first-key")).json
    assert meta["settings"]["api_keys"] == "***"


def test_no_keys_means_no_auth(make_store):
    assert client_for(make_store).simulate_post("/async", json=[1]).status_code == 202


@pytest.fixture
def app(make_store):
    client = client_for(make_store)
    client.store = make_store()
    return client


def test_idempotency_key_returns_the_same_id_and_queues_once(app):
    headers = {"Idempotency-Key": "order-42"}
    first = app.simulate_post("/async", json={"data": [1, 2], "webhook": "http://127.0.0.1:9/h"}, headers=headers)
    again = app.simulate_post("/async", json={"data": [1, 2], "webhook": "http://127.0.0.1:9/h"}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json["id"] == again.json["id"]
    assert app.store.queue_length() == 2
    other = app.simulate_post("/async", json={"data": [1, 2]}, headers={"Idempotency-Key": "order-43"})
    assert other.json["id"] != first.json["id"]


def test_reused_idempotency_key_with_another_body_is_409(app):
    app.simulate_post("/async", json=[1], headers={"Idempotency-Key": "k"})
    conflict = app.simulate_post("/async", json=[2], headers={"Idempotency-Key": "k"})
    assert conflict.status_code == 409
    assert conflict.json["error"]["code"] == "conflict"
    assert app.store.queue_length() == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\nkey"])
def test_malformed_idempotency_key_is_422(app, key):
    assert app.simulate_post("/async", json=[1], headers={"Idempotency-Key": key}).status_code == 422


def test_pickle_and_msgpack_extensions_are_refused(app):
    pickled = app.simulate_post("/async", body=b"\x80\x04K\x01.", headers={"Content-Type": "application/python-pickle"})
    assert pickled.status_code == 415
    extension = msgpack.packb([msgpack.ExtType(1, msgpack.packb(["x", "y", b"z"]))])
    forged = app.simulate_post("/async", body=extension, headers={"Content-Type": "application/msgpack"})
    assert forged.status_code == 400
    assert "extension type 1 is not accepted" in forged.json["error"]["message"]


def test_openapi_describes_every_route(app):
    document = app.simulate_get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    served = {"/sync", "/async", "/result/{request_id}", "/health", "/ready", "/meta", "/metrics", "/openapi.json"}
    assert set(document["paths"]) == served
    for path in served:
        concrete = path.replace("{request_id}", "some-id")
        method = next(iter(document["paths"][path]))
        status = app.simulate_request(method.upper(), concrete, json=[1], params={"timeout": "0.01"}).status_code
        assert status != 405 and (status != 404 or path.startswith("/result"))
