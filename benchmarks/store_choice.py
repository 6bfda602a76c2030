"""Why the embedded store is hand-written SQLite and not diskcache's Deque.

    python benchmarks/store_choice.py [--requests 3000]

diskcache offers a process-safe Deque and Cache on SQLite, but no claim with a
lease: an item popped by a loop that then dies is gone, which breaks "no
accepted request is lost". The closest diskcache design (Deque.popleft to
claim, Cache for results) is measured here against LocalStore doing the full
contract (enqueue, leased claim, complete, read result), both in one process
on /dev/shm, batches of 16. diskcache is only needed to run this script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from fastdeploy.store.codec import pack
from fastdeploy.store.local import LocalStore

BATCH = 16
ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None


def run_local(n: int) -> float:
    with tempfile.TemporaryDirectory(dir=ROOT) as folder:
        store = LocalStore(Path(folder))
        start = time.perf_counter()
        for i in range(0, n, BATCH):
            for j in range(i, i + BATCH):
                store.enqueue(f"r{j}", [pack(j)])
            batch = store.claim(BATCH, lease_s=30)
            store.complete(batch, [item.payload for item in batch])
            for j in range(i, i + BATCH):
                store.result(f"r{j}")
        elapsed = time.perf_counter() - start
        store.close()
    return elapsed


def run_diskcache(n: int) -> float:
    import diskcache

    with tempfile.TemporaryDirectory(dir=ROOT) as folder:
        queue = diskcache.Deque(directory=os.path.join(folder, "queue"))
        results = diskcache.Cache(os.path.join(folder, "results"))
        start = time.perf_counter()
        for i in range(0, n, BATCH):
            for j in range(i, i + BATCH):
                queue.append((f"r{j}", pack(j)))
            batch = []
            for _ in range(BATCH):
                try:
                    batch.append(queue.popleft())
                except IndexError:
                    break
            with results.transact():
                for request_id, payload in batch:
                    results.set(request_id, payload, expire=3600)
            for j in range(i, i + BATCH):
                results.get(f"r{j}")
        elapsed = time.perf_counter() - start
        results.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"$ python benchmarks/store_choice.py --requests {args.requests} --rounds {args.rounds}\n")
    local = [run_local(args.requests) for _ in range(args.rounds)]
    disk = [run_diskcache(args.requests) for _ in range(args.rounds)]
    per_request = {name: statistics.median(times) / args.requests * 1e6 for name, times in
                   (("LocalStore (leased claim)", local), ("diskcache Deque + Cache (no lease)", disk))}
    print("| store | µs per request (enqueue, claim, complete, read), median of rounds |")
    print("|---|---|")
    for name, micros in per_request.items():
        print(f"| {name} | {micros:.1f} |")
    values = list(per_request.values())
    print(f"\nratio diskcache / LocalStore: {values[1] / values[0]:.2f}")


if __name__ == "__main__":
    main()
