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

With ``FLOOR_QUEUE_DB`` set (compare.py's ``floor3``) it also does the least
storing a server needs for an accepted request to outlive a crash of either
process: the API worker commits the request to a SQLite file in WAL mode on
tmpfs before handing it over, and the loop process commits the output once it
has answered (answer first, as fastdeploy rings ahead of its commit). It stores
and never rescues: no claim, no lease, no retries, one loop. So it is a
generous floor for a durable design like fastdeploy's, whose store adds those.
"""

import os
import socket
import sqlite3
import sys
import uuid

import falcon
import orjson
from gevent import socket as gevent_socket  # cooperative in the API worker; the loop uses the stdlib's

# this folder is on the path, as gunicorn --chdir puts it
from falcon_floor import SLEEP_RECIPE_ONE_INPUT_S, Health, timed_sleep

MAX_DATAGRAM = 65536
QUEUE_DB = os.environ.get("FLOOR_QUEUE_DB")
ID_BYTES = 32  # a datagram of the durable floor starts with the request's id (uuid4 hex)


def open_queue(path: str) -> sqlite3.Connection:
    """The queue as fastdeploy's embedded store opens its file: WAL, synchronous=NORMAL, explicit transactions."""
    db = sqlite3.connect(path, isolation_level=None, timeout=5)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, body BLOB, output BLOB, done INTEGER)")
    return db


def commit(db: sqlite3.Connection, sql: str, params: tuple) -> None:
    db.execute("BEGIN IMMEDIATE")
    db.execute(sql, params)
    db.execute("COMMIT")


def serve_loop(path: str) -> None:
    """Answer every datagram after the predictor's time, to whoever sent it; durable: then store the output."""
    db = open_queue(QUEUE_DB) if QUEUE_DB else None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    while True:
        message, sender = sock.recvfrom(MAX_DATAGRAM)
        request_id, body = (message[:ID_BYTES], message[ID_BYTES:]) if db else (b"", message)
        timed_sleep(SLEEP_RECIPE_ONE_INPUT_S)
        sock.sendto(body, sender)
        if db:
            commit(db, "UPDATE requests SET output = ?, done = 1 WHERE id = ?", (body, request_id.decode()))


class Predict:
    def __init__(self, loop_path: str) -> None:
        self.loop_path = loop_path
        self.sock = None  # bound lazily: one per worker process, after gunicorn's fork
        self.db = None

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.sock is None:
            self.sock = gevent_socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(f"{self.loop_path}.{os.getpid()}")
            self.db = open_queue(QUEUE_DB) if QUEUE_DB else None
        body = req.bounded_stream.read()
        if self.db is not None:
            request_id = uuid.uuid4().hex
            commit(self.db, "INSERT INTO requests (id, body, done) VALUES (?, ?, 0)", (request_id, body))
            body = request_id.encode() + body
        self.sock.sendto(body, self.loop_path)
        inputs = orjson.loads(self.sock.recv(MAX_DATAGRAM))
        resp.data = orjson.dumps({"results": inputs})
        resp.content_type = falcon.MEDIA_JSON


app = falcon.App()
app.add_route("/sync", Predict(os.environ.get("FLOOR_LOOP_SOCKET", "")))
app.add_route("/health", Health())

if __name__ == "__main__":
    serve_loop(sys.argv[1])
