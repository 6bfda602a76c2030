"""Why one request costs more at concurrency 1 than the store's own speed suggests.

    python benchmarks/store_idle.py [--rounds 1000] [--requests 8]

Two connections on one embedded store play API and loop: the "API" queues a
request (or --requests of them in one transaction, as its group commit does),
the "loop" claims them, pauses as long as a predictor would, then completes
them, and the "API" reads a result. Each operation is timed after
pauses of 0, 2 and 20 ms. Served at concurrency 1, every process idles
through the predict, and the store operations after it run with cold code
and data: the same `complete()` costs several times what it costs back to
back (docs/performance.md, "Where the time goes").
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid

from fastdeploy.store.base import NewRequest
from fastdeploy.store.codec import pack
from fastdeploy.store.local import LocalStore

ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None
PAUSES_S = (0.0, 0.002, 0.020)
OPERATIONS = ("enqueue", "claim", "complete", "finished", "result")


def measure(pause_s: float, rounds: int, requests: int = 1) -> dict[str, float]:
    """Median milliseconds of each operation when the loop pauses pause_s between claim and complete."""
    timings: dict[str, list[float]] = {name: [] for name in OPERATIONS}
    with tempfile.TemporaryDirectory(dir=ROOT) as folder:
        api, loop = LocalStore(folder), LocalStore(folder)
        try:
            for n in range(rounds):
                request_ids = [uuid.uuid4().hex for _ in range(requests)]
                marks = [time.perf_counter()]
                api.enqueue_many([NewRequest(request_id, [pack("hello")], None, None, 1, None, None)
                                  for request_id in request_ids])
                marks.append(time.perf_counter())
                batch = loop.claim(32, lease_s=30)
                marks.append(time.perf_counter())
                time.sleep(pause_s)
                marks.append(time.perf_counter())
                loop.complete(batch, [pack("HELLO")] * len(batch))
                marks.append(time.perf_counter())
                api.finished(request_ids)
                marks.append(time.perf_counter())
                api.result(request_ids[0])
                marks.append(time.perf_counter())
                if n >= rounds // 10:  # warm-up excluded
                    spans = [marks[1] - marks[0], marks[2] - marks[1], marks[4] - marks[3],
                             marks[5] - marks[4], marks[6] - marks[5]]
                    for name, seconds in zip(OPERATIONS, spans, strict=True):
                        timings[name].append(seconds * 1000)
        finally:
            api.close()
            loop.close()
    return {name: statistics.median(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=1, help="one-input requests queued and claimed together")
    args = parser.parse_args()
    print("| pause before complete | " + " | ".join(f"{name} ms" for name in OPERATIONS) + " |")
    print("|---|" + "---|" * len(OPERATIONS))
    for pause_s in PAUSES_S:
        medians = measure(pause_s, args.rounds, args.requests)
        print(f"| {pause_s * 1000:.0f} ms | " + " | ".join(f"{medians[name]:.3f}" for name in OPERATIONS) + " |")


if __name__ == "__main__":
    main()
