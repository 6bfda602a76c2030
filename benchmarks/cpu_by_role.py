"""CPU time and run-queue wait per request of each process of a server, beside the load generator's.

    python benchmarks/cpu_by_role.py fastdeploy floor2 --concurrency 1
    python benchmarks/cpu_by_role.py fastdeploy fastdeploy311 --workload torch --concurrency 8

For each server kind of compare.py (fastdeploy, floor, floor2, fastdeploy311, ...; the
floors serve ``sleep`` only) on a workload of compare.py: start it, drive it closed-loop
from a load generator in a process of its own, and read every thread's
``/proc/.../schedstat`` (time on a CPU, time runnable but waiting for one) before and after
a measured window. Per request, by role (client, API, loop, other): the CPU the
requests cost, and how long each role sat runnable while something else held the CPU.
Time on a CPU says what a server's own code costs; run-queue wait says whether its
processes got in each other's way on this machine's cores. Linux only.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks.compare import RECIPES, start_server  # noqa: E402

WARMUP_S = 3.0


def role(command: str) -> str:
    if "run_load" in command:
        return "client"
    if "--loop" in command or ("two_process_floor.py" in command and "gunicorn" not in command):
        return "loop"
    if "gunicorn" in command or "--rest" in command:
        return "api"
    return "other"  # fastdeploy's supervisor, or a server that is one process (LitServe)


def schedstat_by_role(groups: set[int]) -> dict[tuple[str, str], tuple[str, int, int]]:
    """(pid, tid) -> (role, ns on a CPU, ns runnable but waiting) for every thread of the process groups."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2]) not in groups:
                continue
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            for tid in os.listdir(f"/proc/{pid}/task"):
                on_cpu, waiting, _ = map(int, Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split())
                found[(pid, tid)] = (role(command), on_cpu, waiting)
        except OSError:
            continue  # exited meanwhile
    return found


def measure(kind: str, recipe: Path, concurrency: int,
            duration_s: float) -> tuple[dict, dict[str, tuple[float, float]]]:
    server = start_server(kind, recipe)
    try:
        server.wait_ready()
        client = subprocess.Popen(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE.parent)!r}); "
             "from benchmarks.loadgen import run_load; "
             f"print(run_load({server.port}, {server.request!r}, {concurrency}, {duration_s + 2 * WARMUP_S}, 1)"
             ".summary())"],
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        groups = {os.getpgid(process.pid) for process in server.processes} | {client.pid}
        time.sleep(WARMUP_S)
        before, started = schedstat_by_role(groups), time.monotonic()
        time.sleep(duration_s)
        after, window_s = schedstat_by_role(groups), time.monotonic() - started
        summary = ast.literal_eval(client.communicate()[0].strip().splitlines()[-1])
    finally:
        server.stop()
    requests = summary["requests_per_s"] * window_s
    per_role: dict[str, list[float]] = {}
    for thread, (name, on_cpu, waiting) in after.items():
        if thread in before:
            totals = per_role.setdefault(name, [0.0, 0.0])
            totals[0] += (on_cpu - before[thread][1]) / requests / 1e6
            totals[1] += (waiting - before[thread][2]) / requests / 1e6
    return summary, {name: (cpu, wait) for name, (cpu, wait) in per_role.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="+", help="compare.py server kinds, measured in turn")
    parser.add_argument("--workload", choices=sorted(RECIPES), default="sleep")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print("| round | server | p50 ms | req/s | role | CPU ms/request | run-queue wait ms/request |")
    print("|---|---|---|---|---|---|---|")
    for round_ in range(1, args.rounds + 1):
        for kind in args.kinds:
            summary, per_role = measure(kind, RECIPES[args.workload], args.concurrency, args.duration)
            for name, (cpu, wait) in sorted(per_role.items()):
                print(f"| {round_} | {kind} | {summary['p50_ms']} | {summary['requests_per_s']} | {name} | "
                      f"{cpu:.3f} | {wait:.3f} |", flush=True)


if __name__ == "__main__":
    main()
