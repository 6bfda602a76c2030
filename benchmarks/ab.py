"""Two versions of fastdeploy, or two settings, on one workload, alternating: is a change faster?

    git worktree add /tmp/before HEAD~1
    python benchmarks/ab.py benchmarks/recipes/sleep --concurrency 8 --rounds 4 \\
        before=/tmp/before now=.
    python benchmarks/ab.py benchmarks/recipes/sleep --concurrency 8 \\
        two=.,FASTDEPLOY_WORKERS=2 three=.,FASTDEPLOY_WORKERS=3

Each variant is NAME=SOURCE[,VARIABLE=VALUE...]: fastdeploy is imported from the
SOURCE folder (a checkout), with those environment variables on top. Every
round starts each variant afresh (batch size fixed at 32, as in compare.py),
drives it closed-loop for --duration seconds after a 1 s warm-up, stops it,
then goes on to the next, in reverse order every other round, so the host's
drift (10-20 % an hour here) lands on both sides alike; compare pairs within
a round, over an even number of rounds. Besides requests/s and
latency it prints the CPU time per request of the API workers and of the
loop (from /proc), which is steadier than throughput on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.compare import BATCH, Server, free_port  # noqa: E402
from benchmarks.cpu_by_role import schedstat_by_role  # noqa: E402
from benchmarks.loadgen import build_request, run_load  # noqa: E402

WARMUP_S = 1.0


def cpu_seconds_by_role(group: int) -> dict[str, float]:
    """CPU time used so far by the processes of a server's process group: its loop and its API."""
    used = {"api": 0.0, "loop": 0.0}
    for role, on_cpu_ns, _ in schedstat_by_role({group}).values():
        if role in used:
            used[role] += on_cpu_ns / 1e9
    return used


def measure(recipe: Path, variant: str, concurrency: int, duration_s: float, body: bytes) -> dict:
    name, spec = variant.split("=", 1)
    source, *settings = spec.split(",")
    port = free_port()
    scratch = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    env = {**os.environ, "PYTHONPATH": str(Path(source).resolve()), "FASTDEPLOY_PORT": str(port),
           "FASTDEPLOY_STORE_DIR": str(scratch / "queue"), "FASTDEPLOY_STORE_NAMESPACE": scratch.name,
           "FASTDEPLOY_BATCH_SIZE": str(BATCH), "FASTDEPLOY_MAX_BATCH_SIZE": str(BATCH),
           "FASTDEPLOY_LOG_LEVEL": "warning", **dict(setting.split("=", 1) for setting in settings)}
    # run from SOURCE: "python -m" puts the working folder first on the path
    process = subprocess.Popen([sys.executable, "-m", "fastdeploy", "--run", str(recipe.resolve())], env=env,
                               cwd=Path(source).resolve(), start_new_session=True)
    server = Server(name, [process], port, build_request("/sync", body), "/ready", scratch / "batches", scratch,
                    redis_url=env.get("FASTDEPLOY_STORE_URL", ""))
    try:
        server.wait_ready()
        outcome = {}
        load = threading.Thread(target=lambda: outcome.update(
            result=run_load(port, server.request, concurrency, duration_s, warmup_s=WARMUP_S)))
        before = cpu_seconds_by_role(process.pid)
        load.start()
        load.join()
        after = cpu_seconds_by_role(process.pid)
    finally:
        server.stop()
    row = {"variant": name, **outcome["result"].summary()}
    served = row["requests_per_s"] * (duration_s + WARMUP_S) or 1.0  # the CPU counters include the warm-up
    for role in ("api", "loop"):
        row[f"{role}_cpu_ms"] = round(1000 * (after[role] - before[role]) / served, 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("variants", nargs="+", help="NAME=SOURCE[,VARIABLE=VALUE...]")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=4, help="an even number: half of them in reverse order")
    parser.add_argument("--body", default='["x"]', help="the JSON body of each /sync request")
    args = parser.parse_args()
    print("| round | variant | req/s | p50 ms | p99 ms | errors | API CPU ms/request | loop CPU ms/request |")
    print("|---|---|---|---|---|---|---|---|")
    totals: dict[str, list[float]] = {}
    for round_number in range(1, args.rounds + 1):
        # every other round in reverse order: a host that drifts within a round then favours
        # each variant as often as the other (in fixed order the second ran 0.2-0.85 ms faster
        # in four rounds of one caller, then no faster in six with the order reversed or quiet)
        order = args.variants if round_number % 2 else args.variants[::-1]
        for variant in order:
            row = measure(args.recipe, variant, args.concurrency, args.duration, args.body.encode())
            totals.setdefault(row["variant"], []).append(row["requests_per_s"])
            print(f"| {round_number} | {row['variant']} | {row['requests_per_s']:.1f} | {row['p50_ms']:.2f} | "
                  f"{row['p99_ms']:.2f} | {row['errors']} | {row['api_cpu_ms']} | {row['loop_cpu_ms']} |", flush=True)
    for name, rates in totals.items():
        print(f"{name}: mean {sum(rates) / len(rates):.1f} req/s over {len(rates)} rounds")


if __name__ == "__main__":
    main()
