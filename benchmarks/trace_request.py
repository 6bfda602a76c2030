"""Where one request's time goes: a timeline of its steps through the API worker and the loop.

    python benchmarks/trace_request.py benchmarks/recipes/sleep      # idles 21 ms per request
    python benchmarks/trace_request.py recipes/echo                  # no idle: the same path warm
    python benchmarks/trace_request.py benchmarks/recipes/torch_mlp --body '[7]' --concurrency 8 --per batch

Serves RECIPE with ``fastdeploy --run`` (batch size 32, as compare.py) with
benchmarks/trace_hooks on its path, which timestamps each step in every
process (see trace_hooks/sitecustomize.py), drives it closed-loop at
--concurrency (1 by default, where one request's path is the whole story)
with benchmarks/loadgen.py, then prints one row per step in the order a
request meets them: the median time from the request reaching gunicorn
(parsed) to the step, and the median gap from the step before. Steps are
``process:name>`` on entry and ``<`` on return; ``bell wait<!`` is a wait
that was rung; ``#2`` is a step's second time in the cycle. The last row's
offset against the median round trip leaves what happens outside the
server: the client, the loopback, gunicorn's parsing. With ``--per batch``
the cycle runs from the end of one predict to the end of the next instead,
which is what to read with several callers: the steps between a predict's
end and the next one's start are the turn-around the predictor waits for.
Each note costs 1-2 µs (one ``write``), so gaps are a little high; compare
rows of one run, and runs of this script, rather than its total with
compare.py's.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks.compare import BATCH, Server, free_port  # noqa: E402
from benchmarks.loadgen import build_request, run_load  # noqa: E402

CYCLE_START = {"request": "api:http>", "batch": "loop:predictor<"}
SHOWN_IN = 0.8  # a step shows when it came in at least this share of the cycles


def serve_traced(recipe: Path, trace_dir: Path, scratch: Path, body: bytes) -> Server:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE / "trace_hooks"), str(HERE.parent)]),
           "FASTDEPLOY_TRACE_DIR": str(trace_dir), "FASTDEPLOY_PORT": str(port),
           "FASTDEPLOY_STORE_DIR": str(scratch / "queue"), "FASTDEPLOY_BATCH_SIZE": str(BATCH),
           "FASTDEPLOY_MAX_BATCH_SIZE": str(BATCH), "FASTDEPLOY_LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "fastdeploy", "--run", str(recipe)], env=env,
                               start_new_session=True)
    return Server("fastdeploy", [process], port, build_request("/sync", body), "/ready", scratch / "batches",
                  scratch)


def read_notes(trace_dir: Path) -> list[tuple[int, str]]:
    """(time ns, "process:step") for every note, in time order; a process is named by what it noted."""
    by_pid: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for log in trace_dir.glob("*.log"):
        for line in log.read_text().splitlines():
            ns, pid, step = line.split(" ", 2)
            by_pid[pid].append((int(ns), step))
    notes = []
    for pid_notes in by_pid.values():
        steps = {step for _, step in pid_notes}
        role = "loop" if "predictor>" in steps else "api" if "http>" in steps else None
        if role is not None:  # the supervisor and gunicorn's arbiter note nothing of a request
            notes += [(ns, f"{role}:{step}") for ns, step in pid_notes]
    return sorted(notes)


def timeline(notes: list[tuple[int, str]], start: str) -> list[tuple[str, float, float]]:
    """(step, median µs from the cycle's start, median µs from the step before it), in the order of
    the median offsets; a cycle runs from one note of ``start`` to the next."""
    cycles: list[tuple[int, dict[str, int]]] = []
    seen: Counter = Counter()  # how often each step came in the current cycle
    for ns, step in notes:
        if step == start:
            cycles.append((ns, {}))
            seen = Counter()
        if cycles:
            seen[step] += 1
            cycles[-1][1][step if seen[step] == 1 else f"{step} #{seen[step]}"] = ns
    offsets: dict[str, list[float]] = defaultdict(list)
    for started, steps in cycles:
        for step, ns in steps.items():
            offsets[step].append((ns - started) / 1000)
    common = [step for step, values in offsets.items() if len(values) >= SHOWN_IN * len(cycles)]
    common.sort(key=lambda step: statistics.median(offsets[step]))
    rows, previous = [], None
    for step in common:
        gaps = [(steps[step] - steps[previous]) / 1000 for _, steps in cycles
                if previous is not None and step in steps and previous in steps]
        rows.append((step, statistics.median(offsets[step]), statistics.median(gaps) if gaps else 0.0))
        previous = step
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--body", default='["x"]', help="the JSON body of each /sync request")
    parser.add_argument("--per", choices=sorted(CYCLE_START), default="request",
                        help="a cycle from a request's arrival, or from the end of a predict")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trace-") as trace_dir, \
            tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as scratch:
        server = serve_traced(args.recipe.resolve(), Path(trace_dir), Path(scratch), args.body.encode())
        try:
            server.wait_ready()
            for log in Path(trace_dir).glob("*.log"):  # start and tuning are not the request path
                os.truncate(log, 0)
            result = run_load(server.port, server.request, args.concurrency, args.duration, warmup_s=0.5)
        finally:
            server.stop()
        rows = timeline(read_notes(Path(trace_dir)), CYCLE_START[args.per])
    load = result.summary()
    print(f"    python benchmarks/trace_request.py {shlex.join(sys.argv[1:])}\n")
    print(f"{load['requests']} requests, {load['errors']} errors, round trip p50 {load['p50_ms']} ms\n")
    print(f"| step | from {CYCLE_START[args.per]} µs | from the step before µs |")
    print("|---|---|---|")
    for step, offset, gap in rows:
        print(f"| {step} | {offset:.1f} | {gap:.1f} |")


if __name__ == "__main__":
    main()
