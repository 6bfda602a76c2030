"""What one enqueue and one claim cost on the embedded store as the queue grows.

    python benchmarks/queue_depth.py [--depths 0,1000,10000,50000]

Every enqueue checks the queue against ``max_queue_length``. Counting the
queued rows made that check grow with the queue (0.4–0.6 ms per enqueue
at 10,000 queued, the default limit), so a server got slower exactly when it
was busiest; the store now keeps the count in a row (docs/design.md).
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

ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None
TIMED = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="0,1000,10000,50000")
    args = parser.parse_args()
    depths = [int(depth) for depth in args.depths.split(",")]
    with tempfile.TemporaryDirectory(dir=ROOT) as folder:
        store = LocalStore(Path(folder), max_queue_length=max(depths) + 2 * TIMED * len(depths))
        payload = pack("x")
        queued = 0
        print("| queued | enqueue, median ms | claim of 32, median ms |\n|---|---|---|")
        for depth in depths:
            while queued < depth:
                store.enqueue(f"fill-{queued}", [payload])
                queued += 1
            enqueues, claims = [], []
            for n in range(TIMED):
                start = time.perf_counter()
                store.enqueue(f"timed-{depth}-{n}", [payload])
                enqueues.append(time.perf_counter() - start)
            queued += TIMED
            for _ in range(5):  # what it claims leaves the queue; the next depth fills it up again
                start = time.perf_counter()
                claimed = store.claim(32, lease_s=3600)
                claims.append(time.perf_counter() - start)
                store.fail(list({item.request_id for item in claimed}), "cancelled", "benchmark")
                queued -= len(claimed)
            print(f"| {depth:,} | {statistics.median(enqueues) * 1000:.3f} | {statistics.median(claims) * 1000:.3f} |")
        store.close()


if __name__ == "__main__":
    main()
