"""Property-based hostile input: whatever arrives, the answer is a JSON 4xx (or success), never a 500.

The app runs in-process around a real store, with a real echo loop serving it,
so accepted requests travel the whole path. /sync is called with a short
timeout: a hang would show as a slow test, an unhandled error as a 500.
"""

from __future__ import annotations

import json
import threading

import falcon.testing
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastdeploy.api.app import create_app, recipe_info
from fastdeploy.files import safe_name
from fastdeploy.loop import Loop
from fastdeploy.recipe import load_recipe
from fastdeploy.settings import Settings
from fastdeploy.store.local import LocalStore
from tests.conftest import ECHO

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
MEDIA_TYPES = ["application/json", "application/msgpack", "multipart/form-data; boundary=b", "text/plain",
               "application/x-www-form-urlencoded", "application/python-pickle", "", "application/json; charset=x"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-store")
    config = Settings(max_inputs=8, max_body_bytes=4096, max_upload_bytes=4096, batch_size=8, max_batch_size=8,
                      timeout_s=2)
    loop = Loop(load_recipe(ECHO), LocalStore(folder), config)
    loop.prepare()
    thread = threading.Thread(target=loop.serve, daemon=True)
    thread.start()
    store = LocalStore(folder)
    yield falcon.testing.TestClient(create_app(config, store, recipe_info(ECHO)))
    loop.stop()
    thread.join(10)
    store.close()
    loop.store.close()


def _fits_msgpack(value) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return -2**63 <= value < 2**64
    if isinstance(value, list):
        return all(_fits_msgpack(v) for v in value)
    if isinstance(value, dict):
        return all(_fits_msgpack(v) for v in value.values())
    return True


def assert_sane(response):
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json["error"]
        assert error["code"] and error["message"]


@FUZZ
@given(body=json_values, path=st.sampled_from(["/sync", "/async"]))
def test_any_json_value(app, body, path):
    # the standard library writes what orjson will not (integers past 64 bits): the server must refuse them cleanly
    assert_sane(app.simulate_post(path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
                                  params={"timeout": "2"}))


@FUZZ
@given(body=st.binary(max_size=600), media_type=st.sampled_from(MEDIA_TYPES), path=st.sampled_from(["/sync", "/async"]))
def test_any_bytes_with_any_media_type(app, body, media_type, path):
    assert_sane(app.simulate_post(path, body=body, headers={"Content-Type": media_type}, params={"timeout": "2"}))


@FUZZ
@given(body=json_values.filter(lambda v: _fits_msgpack(v)))
def test_any_msgpack_value(app, body):
    assert_sane(app.simulate_post("/async", body=msgpack.packb(body), headers={"Content-Type": "application/msgpack"}))


@FUZZ
@given(names=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=3),
       content=st.binary(max_size=200), field=st.sampled_from(["file", "data", "timeout", "webhook", "x"]))
def test_multipart_with_hostile_names_and_fields(app, names, content, field):
    parts = []
    for name in names:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")
        parts.append(f'--b\r\nContent-Disposition: form-data; name="{field}"; filename="{quoted}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(parts) + b"--b--\r\n"
    assert_sane(app.simulate_post("/async", body=body, headers={"Content-Type": "multipart/form-data; boundary=b"}))


@FUZZ
@given(request_id=st.text(min_size=1, max_size=80))
def test_any_result_id(app, request_id):
    response = app.simulate_get("/result/" + request_id)
    assert_sane(response)


def test_deep_nesting_is_refused_not_crashed(app):
    deep_json = b"[" * 3000 + b"]" * 3000
    assert app.simulate_post("/async", body=deep_json, headers={"Content-Type": "application/json"}).status_code in (
        400, 413)
    deep_msgpack = b"\x91" * 3000 + b"\x01"
    response = app.simulate_post("/async", body=deep_msgpack, headers={"Content-Type": "application/msgpack"})
    assert response.status_code == 400


@FUZZ
@given(name=st.text(max_size=300))
def test_uploaded_file_names_cannot_leave_their_folder(name):
    safe = safe_name(name)
    assert safe and "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not safe.startswith(".") and len(safe) <= 100
