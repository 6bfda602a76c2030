"""Latency at concurrency 1: what fastdeploy adds on top of the predictor's own time.

    python benchmarks/latency.py [--requests 300]

Serves benchmarks/recipes/sleep (21 ms for one item) and recipes/echo (no
work) with ``fastdeploy --run`` on 127.0.0.1, sends sequential /sync
requests over one keep-alive connection, drops the first 20 and prints
median/p90/p99/max. Overhead = sleep median - 21 ms (the predictor's time
for one input, measured in-process here too).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(recipe: Path, port: int, store_dir: str) -> subprocess.Popen:
    env = {**os.environ, "FASTDEPLOY_PORT": str(port), "FASTDEPLOY_STORE_DIR": store_dir,
           "FASTDEPLOY_BATCH_SIZE": "32", "FASTDEPLOY_MAX_BATCH_SIZE": "32", "FASTDEPLOY_LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "fastdeploy", "--run", str(recipe)], env=env)
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{recipe} did not become ready")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(recipe: Path, n: int) -> list[float]:
    port = free_port()
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as store_dir:
        process = serve(recipe, port, store_dir)
        try:
            # http.client, not requests: the lightest keep-alive client, so its own cost hides little
            connection = http.client.HTTPConnection("127.0.0.1", port)
            latencies = []
            for i in range(n + WARMUP):
                start = time.perf_counter()
                connection.request("POST", "/sync", body=b"[%d]" % i, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                body = response.read()
                elapsed = (time.perf_counter() - start) * 1000
                assert response.status == 200, body
                if i >= WARMUP:
                    latencies.append(elapsed)
            return latencies
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def model_time_ms(recipe: Path, n: int = 50) -> float:
    sys.path.insert(0, str(recipe))
    from predictor import predictor  # noqa: E402  (the recipe's own module)

    times = []
    for i in range(n):
        start = time.perf_counter()
        predictor([i], 1)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    print(f"$ python benchmarks/latency.py --requests {args.requests}")
    model_ms = model_time_ms(ROOT / "benchmarks" / "recipes" / "sleep")
    print(f"\nsleep predictor alone, 1 input: median {model_ms:.2f} ms\n")
    print("| recipe | median ms | p90 ms | p99 ms | max ms | overhead (median - model) ms |")
    print("|---|---|---|---|---|---|")
    for name, recipe, own_ms in (("echo", ROOT / "recipes" / "echo", 0.0),
                                 ("sleep", ROOT / "benchmarks" / "recipes" / "sleep", model_ms)):
        lat = measure(recipe, args.requests)
        median = statistics.median(lat)
        print(f"| {name} | {median:.2f} | {percentile(lat, 0.9):.2f} | {percentile(lat, 0.99):.2f} "
              f"| {max(lat):.2f} | {median - own_ms:.2f} |")


if __name__ == "__main__":
    main()
