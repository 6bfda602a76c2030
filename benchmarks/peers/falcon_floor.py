"""The least a falcon + gunicorn + gevent server can add at concurrency 1: no queue, no loop, no batching.

    gunicorn --worker-class gevent --chdir benchmarks/peers falcon_floor:app

It answers each POST after blocking its worker for as long as the ``sleep``
benchmark predictor takes for one input (20 ms + 1 ms, with the real
``time.sleep``: gevent's patched sleep overshoots by about a millisecond). Its
overhead at concurrency 1 is the floor under any server built on this stack,
fastdeploy included; benchmarks/compare.py measures it beside the others.
"""

import os
import time

import falcon
import orjson
from gevent import monkey

blocking_sleep = monkey.get_original("time", "sleep")
SLEEP_RECIPE_ONE_INPUT_S = 0.020 + 0.001
BATCH_LOG = os.environ.get("BENCH_BATCH_LOG")


def timed_sleep(seconds: float) -> None:
    """Block for the predictor's time, and log it as the benchmark predictors log a batch of one."""
    started = time.perf_counter()
    blocking_sleep(seconds)
    if BATCH_LOG:
        with open(BATCH_LOG, "a") as log:
            log.write(f"1 {(time.perf_counter() - started) * 1000:.3f}\n")


class Predict:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        inputs = orjson.loads(req.bounded_stream.read())
        timed_sleep(SLEEP_RECIPE_ONE_INPUT_S)
        resp.data = orjson.dumps({"results": inputs})
        resp.content_type = falcon.MEDIA_JSON


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


app = falcon.App()
app.add_route("/sync", Predict())
app.add_route("/health", Health())
