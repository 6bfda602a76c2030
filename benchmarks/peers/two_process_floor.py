"""The least an API process plus a separate predictor process can add at concurrency 1.

    python two_process_floor.py SOCKET                         # the predictor's process
    FLOOR_LOOP_SOCKET=SOCKET gunicorn --worker-class gevent --chdir benchmarks/peers two_process_floor:app

fastdeploy runs its predictor in a loop process of its own, apart from the API
workers (design.md), so a request crosses to another process and back. This
server is that crossing and nothing else: falcon under gunicorn and gevent sends
the body in one datagram to the loop process, which blocks for the ``sleep``
predictor's time for one input and sends it back; no queue, no store, no
batching, and nothing survives a crash. Its overhead at concurrency 1, beside
``falcon_floor.py`` (the same stack answering in-process), is what the process
boundary itself costs on the host; benchmarks/compare.py measures both.
One request at a time per API worker (one socket each): for concurrency 1 only.
"""

import os
import socket
import sys

import falcon
import orjson
from gevent import socket as gevent_socket  # cooperative in the API worker; the loop uses the stdlib's

# this folder is on the path, as gunicorn --chdir puts it
from falcon_floor import SLEEP_RECIPE_ONE_INPUT_S, Health, timed_sleep

MAX_DATAGRAM = 65536


def serve_loop(path: str) -> None:
    """Answer every datagram after the predictor's time, to whoever sent it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    while True:
        body, sender = sock.recvfrom(MAX_DATAGRAM)
        timed_sleep(SLEEP_RECIPE_ONE_INPUT_S)
        sock.sendto(body, sender)


class Predict:
    def __init__(self, loop_path: str) -> None:
        self.loop_path = loop_path
        self.sock = None  # bound lazily: one per worker process, after gunicorn's fork

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.sock is None:
            self.sock = gevent_socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(f"{self.loop_path}.{os.getpid()}")
        self.sock.sendto(req.bounded_stream.read(), self.loop_path)
        inputs = orjson.loads(self.sock.recv(MAX_DATAGRAM))
        resp.data = orjson.dumps({"results": inputs})
        resp.content_type = falcon.MEDIA_JSON


app = falcon.App()
app.add_route("/sync", Predict(os.environ.get("FLOOR_LOOP_SOCKET", "")))
app.add_route("/health", Health())

if __name__ == "__main__":
    serve_loop(sys.argv[1])
