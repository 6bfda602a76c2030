"""Timestamps at the steps of a request, for benchmarks/trace_request.py; inert unless FASTDEPLOY_TRACE_DIR is set.

Python imports ``sitecustomize`` at start-up from the path, so putting this folder on
PYTHONPATH traces every process of a server (supervisor, loop, gunicorn workers)
without touching fastdeploy's code: when a module named in STEPS is imported, the
functions named there are wrapped to note ``<monotonic ns> <pid> <step>>`` on entry
and ``<step><`` on return (``!`` appended when a wait was rung) in
``$FASTDEPLOY_TRACE_DIR/<pid>.log``. A note is one ``write`` system call: 1-2 µs here.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import os
import sys
import time

TRACE_DIR = os.environ.get("FASTDEPLOY_TRACE_DIR")
_files: dict[int, int] = {}


def note(step: str) -> None:
    pid = os.getpid()  # per pid: a forked child writes a file of its own
    if pid not in _files:
        _files[pid] = os.open(f"{TRACE_DIR}/{pid}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(_files[pid], f"{time.monotonic_ns()} {pid} {step}\n".encode())


def traced(owner: object, name: str, step: str, rung=None) -> None:
    """Replace owner.name by a wrapper noting step on entry and return; rung(result) marks a rung wait."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        note(step + ">")
        result = original(*args, **kwargs)
        note(step + "<" + ("!" if rung is not None and rung(result) else ""))
        return result

    setattr(owner, name, wrapper)


def _is_not_none(result: object) -> bool:
    return result is not None


STEPS = {  # module: how to wrap it once imported
    "gunicorn.workers.base_async": lambda m: traced(m.AsyncWorker, "handle_request", "http"),
    "fastdeploy.api.resources": lambda m: (
        traced(m.SyncResource, "on_post", "falcon /sync"),
        traced(m, "read_prediction_request", "read body"),
        traced(m.Submitter, "submit", "submit"),
        traced(m, "result_document", "result document"),
        traced(m, "write_result", "write result")),
    "fastdeploy.api.group_commit": lambda m: traced(m.GroupCommit, "_lead", "group commit"),
    "fastdeploy.api.waiter": lambda m: (
        traced(m.ResultWaiter, "wait", "wait for result"),
        traced(m.ResultWaiter, "_release", "hand results over")),
    "fastdeploy.store.doorbell": lambda m: (
        traced(m.Bell, "wait", "bell wait", _is_not_none),
        traced(m.Doorbells, "ring", "ring")),
    "fastdeploy.store.sqlite": lambda m: traced(m, "_retry_locked", "BEGIN IMMEDIATE"),
    "fastdeploy.store.local": lambda m: (
        traced(m.LocalStore, "enqueue_many", "enqueue"),
        traced(m.LocalStore, "claim", "claim"),
        traced(m.LocalStore, "complete", "complete"),
        traced(m.LocalStore, "_ring_finished_ahead", "ring ahead"),
        traced(m, "_let_the_woken_run", "yield CPU")),
    "fastdeploy.loop": lambda m: (
        traced(m, "unpack", "unpack input"),
        traced(m.Loop, "_pack", "pack output"),
        traced(m.Loop, "_store_results", "store results")),
    "fastdeploy.recipe": lambda m: traced(m, "run_checked", "predictor"),
}


class _WrapOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: lets the usual finders load a module of STEPS, then wraps it."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in STEPS:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            STEPS[fullname](module)

        spec.loader.exec_module = exec_module
        return spec


if TRACE_DIR:
    sys.meta_path.insert(0, _WrapOnImport())
