"""SQLite plumbing for the embedded store: one connection per process, retried write transactions.

Done the diskcache way: one connection per process (re-opened after a fork),
explicit ``BEGIN IMMEDIATE`` transactions that roll back on any exception,
and retries only for "database is locked". Retries sleep in Python rather
than in SQLite's busy handler, so a gevent API worker yields to its other
greenlets instead of freezing while another process holds the write lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from fastdeploy.errors import RecipeError
from fastdeploy.store.base import StoreClosedError

log = logging.getLogger(__name__)

LOCK_RETRY_LIMIT_S = 30.0
LOCK_YIELD_ONLY_S = 0.0005  # how long a retry only yields before it sleeps

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    n_items INTEGER NOT NULL,
    n_finished INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    created_at REAL NOT NULL,
    first_claimed_at REAL,
    finished_at REAL,
    expires_at REAL,
    webhook_url TEXT,
    webhook_status TEXT,
    webhook_attempts INTEGER NOT NULL DEFAULT 0,
    webhook_due_at REAL,
    webhook_error TEXT
);
CREATE INDEX IF NOT EXISTS requests_expiry ON requests(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS requests_webhooks ON requests(webhook_due_at) WHERE webhook_status = 'pending';
CREATE TABLE IF NOT EXISTS items (
    item_id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    status INTEGER NOT NULL,  -- 0 queued, 1 claimed, 2 done, 3 failed
    payload BLOB,
    output BLOB,
    deadline REAL,
    lease_until REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    stage INTEGER NOT NULL DEFAULT 1,
    last_stage INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS items_queued ON items(stage, item_id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS items_deadline ON items(deadline) WHERE status = 0 AND deadline IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_leases ON items(lease_until) WHERE status = 1;
CREATE INDEX IF NOT EXISTS items_request ON items(request_id, idx);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_request ON chunks(request_id, chunk_id);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    fingerprint TEXT
);
CREATE TABLE IF NOT EXISTS counts (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS loops (
    loop_id TEXT PRIMARY KEY,
    heartbeat_at REAL NOT NULL,
    info BLOB NOT NULL
);
"""


class IncompatibleStoreError(RecipeError):
    """The store file was written by a fastdeploy whose tables differ, and it still holds work.

    A configuration error, like a bad recipe: ``--run`` stops rather than restarting into it.
    """


def _expected_columns() -> dict[str, set[str]]:
    with sqlite3.connect(":memory:") as scratch:
        scratch.executescript(SCHEMA)
        return _columns(scratch)


def _columns(db: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND name NOT LIKE 'sqlite_%'")]
    return {table: {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')} for table in tables}


class SqliteFile:
    """A database file shared by processes; safe across threads and greenlets of one process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.closed = False
        self._pid = -1
        self._conn: sqlite3.Connection | None = None
        with self.transaction() as db:
            self._replace_other_layout(db)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def _replace_other_layout(self, db: sqlite3.Connection) -> None:
        """A store left on tmpfs by another fastdeploy version: start it afresh if its queue is empty.

        Finished results it held are dropped with it; queued or running inputs are never
        dropped: then the store is refused, naming what to do.
        """
        found, expected = _columns(db), _expected_columns()
        if all(expected[table] <= columns for table, columns in found.items() if table in expected):
            return
        try:
            unfinished = db.execute("SELECT COUNT(*) FROM items WHERE status IN (0, 1)").fetchone()[0]
        except sqlite3.Error:
            unfinished = None
        if unfinished != 0:
            raise IncompatibleStoreError(
                f"the queue in {self.path.parent} was written by another fastdeploy version and still holds "
                f"{'unfinished work' if unfinished is None else f'{unfinished} unfinished inputs'}: serve it "
                f"with the version that wrote it until it drains, or delete the folder to drop that work")
        log.warning("store %s: written by another fastdeploy version, queue empty; starting it afresh", self.path)
        for table in found:
            db.execute(f'DROP TABLE "{table}"')

    def connection(self) -> sqlite3.Connection:
        """This process's connection; a forked child must not reuse its parent's."""
        if self.closed:
            raise StoreClosedError(f"store {self.path} is closed")
        if self._pid != os.getpid():
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout=0")
            _retry_locked(lambda: self._conn.execute("PRAGMA journal_mode=WAL"))
            self._conn.execute("PRAGMA synchronous=NORMAL")  # tmpfs: durability is the process's, not the disk's
            self._pid = os.getpid()
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, retried while another process holds the lock."""
        with self.lock:
            db = self.connection()
            _retry_locked(lambda: db.execute("BEGIN IMMEDIATE"))
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several queries see one consistent state."""
        with self.lock:
            db = self.connection()
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    def read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self.lock:
            return self.connection().execute(sql, params).fetchall()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn, self._pid = None, -1


def _retry_locked(statement: Callable[[], object]) -> None:
    """Run a statement that takes the write lock, sleeping in Python while another process holds it.

    A holder commits within a fraction of a millisecond, while a timed sleep under gevent
    lasts at least about a millisecond (its event loop's resolution): so the first retries
    only yield (to the worker's other greenlets, or to other threads), then back off.
    """
    started = time.monotonic()
    pause = 0.0
    while True:
        try:
            statement()
            return
        except sqlite3.OperationalError as exc:
            waited = time.monotonic() - started
            if "locked" not in str(exc) or waited > LOCK_RETRY_LIMIT_S:
                raise
        if waited > LOCK_YIELD_ONLY_S:
            pause = min(max(pause * 2, 0.0001), 0.005)
        time.sleep(pause)
