"""What idling costs the next piece of work on this host, and whether spinning instead would help.

    python benchmarks/idle_cost.py [--rounds 200]

At one caller every fastdeploy process idles through the predict, then runs a
few hundred microseconds of Python. Measured after 0, 2 and 21 ms (the
``sleep`` predictor's time) of the previous step:

- wake: one process sends a Unix datagram to another, which waits for it
  blocked in ``recv`` or spinning on a non-blocking one; the latency from
  send to receipt;
- work: a fixed piece of Python (a loop of 2,000 multiplications), run after
  sleeping or after spinning for that long;
- syscall: a trivial system call (``getppid``) after sleeping that long;
- store: an empty write transaction (``BEGIN IMMEDIATE; COMMIT``) on an SQLite
  file in WAL mode on tmpfs, as the embedded store runs one; after sleeping,
  after spinning, and after sleeping in 0.5 ms slices that each run the same
  transaction (the code and data kept warm, the CPU idle as much).

docs/performance.md ("Where the time goes") reads these: whether keeping the
processes spinning through the predict would buy back the overhead at one caller,
and whether what goes cold is the CPU or the code and data the request touches.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

GAPS_S = (0.0, 0.002, 0.021)


def wake_latency_us(gap_s: float, spin: bool, rounds: int) -> float:
    """Median send-to-receipt time of a datagram between two processes, the sender idle gap_s before each."""
    token = f"{os.getpid()}-{gap_s}-{spin}"
    to_child, to_parent = f"\0idle-cost-c-{token}".encode(), f"\0idle-cost-p-{token}".encode()
    inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    inbox.bind(to_parent)
    child_inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    child_inbox.bind(to_child)
    pid = os.fork()
    if pid == 0:
        inbox.close()
        child_inbox.setblocking(not spin)
        for _ in range(rounds):
            while True:
                try:
                    sent_ns = int(child_inbox.recv(64))
                    break
                except BlockingIOError:
                    continue
            child_inbox.sendto(str(time.monotonic_ns() - sent_ns).encode(), to_parent)
        os._exit(0)
    child_inbox.close()
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    latencies = []
    for _ in range(rounds):
        time.sleep(gap_s)
        sender.sendto(str(time.monotonic_ns()).encode(), to_child)
        latencies.append(int(inbox.recv(64)) / 1000)
    os.waitpid(pid, 0)
    inbox.close()
    sender.close()
    return statistics.median(latencies)


def some_work() -> int:
    total = 0
    for n in range(2000):
        total += n * n
    return total


def pass_time(gap_s: float, spin: bool) -> None:
    """Sleep gap_s, or spin on the clock as long (the CPU kept busy, nothing else touched)."""
    if not spin:
        time.sleep(gap_s)
        return
    until = time.perf_counter() + gap_s
    while time.perf_counter() < until:
        pass


def work_us(gap_s: float, spin: bool, rounds: int) -> float:
    """Median time of some_work() right after sleeping or spinning for gap_s."""
    times = []
    for _ in range(rounds):
        pass_time(gap_s, spin)
        start = time.perf_counter()
        some_work()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def syscall_us(gap_s: float, rounds: int) -> float:
    """Median time of a system call that does nothing, the first after sleeping gap_s."""
    times = []
    for _ in range(rounds):
        pass_time(gap_s, spin=False)
        start = time.perf_counter()
        os.getppid()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def store_transaction_us(gap_s: float, how: str, rounds: int) -> float:
    """Median time of an empty write transaction after gap_s spent sleeping, spinning or keeping it warm."""
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as folder:
        db = sqlite3.connect(Path(folder) / "idle-cost.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")

        def transaction() -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("COMMIT")

        times = []
        for _ in range(rounds):
            if how == "warm":
                until = time.perf_counter() + gap_s
                while time.perf_counter() < until:
                    transaction()
                    time.sleep(min(0.0005, max(until - time.perf_counter(), 0.0)))
            else:
                pass_time(gap_s, spin=how == "spin")
            start = time.perf_counter()
            transaction()
            times.append((time.perf_counter() - start) * 1e6)
        db.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print("| after | wake, receiver blocked µs | wake, receiver spinning µs | work after sleep µs "
          "| work after spin µs | syscall after sleep µs | store after sleep µs | store after spin µs "
          "| store kept warm µs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for gap_s in GAPS_S:
        print(f"| {gap_s * 1000:.0f} ms | {wake_latency_us(gap_s, False, args.rounds):.0f} | "
              f"{wake_latency_us(gap_s, True, args.rounds):.0f} | {work_us(gap_s, False, args.rounds):.0f} | "
              f"{work_us(gap_s, True, args.rounds):.0f} | {syscall_us(gap_s, args.rounds):.1f} | "
              + " | ".join(f"{store_transaction_us(gap_s, how, args.rounds):.0f}" for how in ("sleep", "spin", "warm"))
              + " |")


if __name__ == "__main__":
    main()
