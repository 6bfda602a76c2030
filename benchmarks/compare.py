"""fastdeploy against its peers, side by side in one run: fastdeploy 3.1.1 (notAI-tech) and LitServe.

    python benchmarks/compare.py [--duration 10] [--repeats 2] [--workloads sleep,torch] [--concurrency 1,8,64,256]

For each workload and server: start it on 127.0.0.1, drive it closed-loop at
concurrency 1, 8, 64 and 256 (one input per request, warm-up excluded),
stop it. Everyone gets the same predictor file and a maximum batch size of
32; fastdeploy's auto-tuned run is reported separately, and so is its run with
live batching (``--target-p99-ms``, TARGET_P99_MS per workload, same cap of 32). ``--servers
fastdeploy,redis`` compares the embedded queue with the shared Redis store (needs a Redis at
``--redis-url``). ``floor`` (on by default, ``sleep`` only, concurrency 1) is
falcon under gunicorn and gevent blocking for the predictor's time with no queue
and no loop: the least any server on fastdeploy's stack adds; ``floor2`` (likewise)
is the same stack handing each request to a second process and back in one
datagram each way, with no queue: the least a server adds that runs its
predictor apart from its API workers, as fastdeploy does; ``floor3`` (likewise) adds
to that the least storing that lets an accepted request survive a crash of either
process (one commit before the hand-off, one after the answer). Peers run from their
own venvs under benchmarks/.venvs (made on first use: fastdeploy 3.1.1 has
the same import name as this package).

Writes benchmarks/results/compare.md and compare.json (``--output NAME``: NAME.md and NAME.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks.loadgen import build_request, run_load  # noqa: E402

VENVS = HERE / ".venvs"
RESULTS = HERE / "results"
CONCURRENCY = (1, 8, 64, 256)
BATCH = 32
RECIPES = {"sleep": HERE / "recipes" / "sleep", "torch": HERE / "recipes" / "torch_mlp"}
FLOORS = ("floor", "floor2", "floor3")  # measured on sleep at concurrency 1 only
FLOOR_LABELS = {"falcon + gunicorn floor": "stack floor", "two-process floor": "two-process floor",
                "durable two-process floor": "durable floor"}
TARGET_P99_MS = {"sleep": 60.0, "torch_mlp": 30.0}  # live batching run: about twice the model's time at batch 8
PEER_PACKAGES = {"fastdeploy311": ["fastdeploy==3.1.1", "torch==2.13.0"],
                 "litserve": ["litserve==0.2.19", "torch==2.13.0"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_python(name: str) -> str:
    python = VENVS / name / "bin" / "python"
    if not python.exists():
        print(f"making venv {name} …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES[name]], check=True)
    return str(python)


@dataclass
class Server:
    name: str
    processes: list[subprocess.Popen]
    port: int
    request: bytes
    ready_path: str
    batch_log: Path
    scratch: Path
    redis_url: str = ""  # the Redis its store lives in, if any: its keys are deleted on stop

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise SystemExit(f"{self.name} exited during start")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}{self.ready_path}", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.name} not ready after {timeout_s}s")

    def stop(self) -> None:
        """Each server runs in its own session: stop the whole group, so no worker outlives its run."""
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)
        if self.redis_url:
            from fastdeploy.store.redis import RedisStore

            store = RedisStore(self.redis_url, self.scratch.name)
            store.delete_all()
            store.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}


def floor_api(app: str, port: int, env: dict) -> subprocess.Popen:
    """One gevent worker under gunicorn serving a floor's falcon app from benchmarks/peers."""
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "--worker-class", "gevent", "--workers", "1",
                             "--bind", f"127.0.0.1:{port}", "--chdir", str(HERE / "peers"), app], env=env, **QUIET)


def start_server(kind: str, recipe: Path, redis_url: str = "") -> Server:
    port = free_port()
    scratch = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    batch_log = scratch / "batches.log"
    env = {**os.environ, "BENCH_BATCH_LOG": str(batch_log)}
    if kind in ("fastdeploy", "tuned", "target", "redis"):
        env.update(FASTDEPLOY_PORT=str(port), FASTDEPLOY_STORE_DIR=str(scratch / "queue"),
                   FASTDEPLOY_LOG_LEVEL="warning", FASTDEPLOY_MAX_BATCH_SIZE=str(BATCH))
        name = "fastdeploy"
        if kind == "tuned":
            name = "fastdeploy (auto-tuned)"
        else:
            env["FASTDEPLOY_BATCH_SIZE"] = str(BATCH)
        if kind == "redis":
            env.update(FASTDEPLOY_STORE_URL=redis_url, FASTDEPLOY_STORE_NAMESPACE=scratch.name)
            name = "fastdeploy (Redis store)"
        if kind == "target":
            env["FASTDEPLOY_TARGET_P99_MS"] = str(TARGET_P99_MS[recipe.name])
            name = f"fastdeploy (target p99 {TARGET_P99_MS[recipe.name]:.0f} ms)"
        processes = [subprocess.Popen([sys.executable, "-m", "fastdeploy", "--run", str(recipe)], env=env, **QUIET)]
        return Server(name, processes, port, build_request("/sync", b'["x"]' if "sleep" in recipe.name else b"[7]"),
                      "/ready", batch_log, scratch, redis_url if kind == "redis" else "")
    if kind == "fastdeploy311":
        copy = scratch / recipe.name  # it writes its queue files into the recipe folder
        shutil.copytree(recipe, copy)
        env.update(PORT=str(port), HOST="127.0.0.1", OPTIMAL_BATCH_SIZE=str(BATCH))
        python = venv_python("fastdeploy311")
        processes = [subprocess.Popen([python, "-m", "fastdeploy", "--recipe", str(copy), mode], env=env, cwd=copy,
                                      **QUIET) for mode in ("--loop", "--rest")]
        body = b'["x"]' if "sleep" in recipe.name else b"[7]"
        return Server("fastdeploy 3.1.1", processes, port, build_request("/sync", body), "/health", batch_log,
                      scratch)
    if kind == "floor":
        processes = [floor_api("falcon_floor:app", port, env)]
        return Server("falcon + gunicorn floor", processes, port, build_request("/sync", b'["x"]'), "/health",
                      batch_log, scratch)
    if kind in ("floor2", "floor3"):
        loop_socket = str(scratch / "loop.sock")
        env["FLOOR_LOOP_SOCKET"] = loop_socket
        if kind == "floor3":
            env["FLOOR_QUEUE_DB"] = str(scratch / "queue.db")
        processes = [subprocess.Popen([sys.executable, str(HERE / "peers" / "two_process_floor.py"), loop_socket],
                                      env=env, **QUIET), floor_api("two_process_floor:app", port, env)]
        name = "durable two-process floor" if kind == "floor3" else "two-process floor"
        return Server(name, processes, port, build_request("/sync", b'["x"]'), "/health", batch_log, scratch)
    python = venv_python("litserve")
    processes = [subprocess.Popen([python, str(HERE / "peers" / "litserve_server.py"), str(recipe), str(port)],
                                  env=env, **QUIET)]
    body = b'{"input": "x"}' if "sleep" in recipe.name else b'{"input": 7}'
    return Server("LitServe", processes, port, build_request("/predict", body), "/health", batch_log, scratch)


def logged_batches(log: Path, skip: int) -> list[tuple[int, float]]:
    """(size, ms) of every batch the server ran after the first skip, as its predictor logged them."""
    if not log.exists():
        return []
    return [(int(size), float(ms)) for size, ms in (line.split() for line in log.read_text().splitlines())][skip:]


def model_times_ms(recipe: Path) -> dict[int, float]:
    """The predictor alone at each batch size, the basis of 'ideal': the median of rounds over all sizes.

    Each round times every size once, so the host's drift (the torch model's own speed moves
    by up to 2x within minutes here) shifts all sizes alike instead of some sizes more.
    """
    code = f"""
import json, statistics, sys, time
sys.path.insert(0, {str(recipe)!r})
from predictor import predictor
sizes = range(1, {BATCH} + 1)
batches = {{size: ["x" if {"sleep" in recipe.name} else 7] * size for size in sizes}}
runs = {{size: [] for size in sizes}}
for size in sizes:
    predictor(batches[size], size)
for _ in range({MODEL_ROUNDS}):
    for size in sizes:
        start = time.perf_counter(); predictor(batches[size], size)
        runs[size].append((time.perf_counter() - start) * 1000)
print(json.dumps({{size: statistics.median(times) for size, times in runs.items()}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "BENCH_BATCH_LOG"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return {int(k): v for k, v in json.loads(done.stdout).items()}


MODEL_ROUNDS = 7


def ideal_items_per_s(sizes: list[int], model_ms: dict[int, float]) -> float | None:
    """Throughput if the predictor ran back to back on exactly the batches the server formed."""
    if not sizes:
        return None
    return sum(sizes) / sum(model_ms[min(s, BATCH)] for s in sizes) * 1000


def measure(server: Server, concurrency: int, duration_s: float, model_ms: dict[int, float]) -> dict:
    before = len(logged_batches(server.batch_log, 0))
    result = run_load(server.port, server.request, concurrency, duration_s, warmup_s=2.0)
    batches = logged_batches(server.batch_log, before)
    sizes = [size for size, _ in batches]
    row = result.summary()
    ideal = ideal_items_per_s(sizes, model_ms)
    row["mean_batch"] = round(statistics.fmean(sizes), 2) if sizes else None
    row["ideal_per_s"] = round(ideal, 1) if ideal else None
    row["efficiency"] = round(row["requests_per_s"] / ideal, 3) if ideal else None
    if concurrency == 1:
        row["overhead_ms"] = round(row["p50_ms"] - model_ms[1], 2)
        # Also against the model's time as it ran inside this server, during this point: the model
        # alone was timed minutes before, and its speed drifts (on torch by more than the overhead).
        lone_batches = [ms for size, ms in batches if size == 1]
        if lone_batches:
            row["served_predict_ms"] = round(statistics.median(lone_batches), 2)
            row["served_overhead_ms"] = round(row["p50_ms"] - row["served_predict_ms"], 2)
    return row


def loadgen_ceiling(duration_s: float, concurrency: tuple[int, ...]) -> list[dict]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE.parent)!r}); "
                               f"from benchmarks.loadgen import serve_trivial; serve_trivial({port}, 600)"])
    time.sleep(1)
    try:
        return [run_load(port, build_request("/x", b"[1]"), c, duration_s, 1.0).summary() for c in concurrency]
    finally:
        server.kill()


def markdown(report: dict) -> str:
    lines = [f"# fastdeploy vs peers, {report['date']}", "", f"    {report['command']}", "",
             f"Machine: {report['machine']}. Max batch size {BATCH} for everyone; one input per request; "
             f"closed loop, {report['duration_s']:.0f} s per point after a 2 s warm-up; repetitions: "
             f"{report['repeats']}. Mean batch and efficiency are over the whole point (warm-up included). "
             "Efficiency = measured / ideal, where ideal = the predictor alone run back to back on the batches "
             "the server formed. Overhead = p50 at concurrency 1 − the model's own time for one input (timed "
             "alone); served predict = the median time of the predictor on one input as it ran inside that "
             "server during the point (every server runs the same predictor file, which logs it), and the "
             "overhead against it.", "",
             "Load generator ceiling (trivial server): " + ", ".join(
                 f"c={row['concurrency']}: {row['requests_per_s']:.0f} req/s" for row in report["ceiling"]), ""]
    for workload, data in report["workloads"].items():
        lines += [f"## {workload}", "", "Model alone, timed before each repetition, ms per batch of 1, 8, 16, 32:", ""]
        lines += [f"- rep {repeat}: " + ", ".join(f"{model_ms[size]:.2f}" for size in (1, 8, 16, 32))
                  for repeat, model_ms in data["model_ms"].items()]
        lines.append("")
        lines += ["| rep | server | c | req/s | p50 ms | p90 ms | p99 ms | errors | mean batch | efficiency | "
                  "overhead ms | served predict ms | overhead vs it ms |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in data["rows"]:
            lines.append(f"| {row['repeat']} | {row['server']} | {row['concurrency']} | {row['requests_per_s']:.1f} | "
                         f"{row['p50_ms']:.2f} | {row['p90_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']} | "
                         f"{row['mean_batch']} | {row['efficiency']} | {row.get('overhead_ms', '')} | "
                         f"{row.get('served_predict_ms', '')} | {row.get('served_overhead_ms', '')} |")
        lines += ["", "Ratios (fastdeploy / best peer, same repetition):", ""]
        lines += [f"- {line}" for line in data["ratios"]]
        for title, variant_lines in data.get("variants", {}).items():
            lines += ["", f"{title} (against fastdeploy with the same cap, same repetition):", ""]
            lines += [f"- {line}" for line in variant_lines]
        lines.append("")
    return "\n".join(lines)


def points(rows: list[dict]):
    """(repeat, concurrency, {server name: row}) for every measured point, in order."""
    for repeat in sorted({r["repeat"] for r in rows}):
        for c in sorted({r["concurrency"] for r in rows}):
            yield repeat, c, {r["server"]: r for r in rows if r["repeat"] == repeat and r["concurrency"] == c}


def ratios(rows: list[dict]) -> list[str]:
    out = []
    for repeat, c, point in points(rows):
        ours = point.get("fastdeploy")
        peers = [r for name, r in point.items() if name in ("fastdeploy 3.1.1", "LitServe")]
        if not ours or not peers:
            continue
        best = max(peers, key=lambda r: r["requests_per_s"])
        text = (f"rep {repeat}, c={c}: throughput {ours['requests_per_s'] / best['requests_per_s']:.2f}× "
                f"{best['server']}; p99 {ours['p99_ms']:.1f} vs {min(p['p99_ms'] for p in peers):.1f} ms")
        if c == 1:
            text += f"; overhead {ours['overhead_ms']:.2f} ms vs {min(p['overhead_ms'] for p in peers):.2f} ms"
            floors = [f"{label} {point[name]['overhead_ms']:.2f} ms" for name, label in FLOOR_LABELS.items()
                      if name in point]
            if floors:
                text += f" ({'; '.join(floors)})"
            served = [r for r in [ours, *peers, *(point[name] for name in FLOOR_LABELS if name in point)]
                      if "served_overhead_ms" in r]
            if served:
                text += "; against the predict as served: " + ", ".join(
                    f"{r['server']} {r['served_overhead_ms']:.2f}" for r in served) + " ms"
        out.append(text)
    return out


VARIANTS = {"Live batching": "fastdeploy (target", "Redis store": "fastdeploy (Redis"}


def variant(rows: list[dict], prefix: str) -> list[str]:
    """A fastdeploy variant's points against plain fastdeploy's, as ratios."""
    out = []
    for repeat, c, point in points(rows):
        base = point.get("fastdeploy")
        other = next((r for name, r in point.items() if name.startswith(prefix)), None)
        if base and other:
            out.append(f"rep {repeat}, c={c}: throughput {other['requests_per_s'] / base['requests_per_s']:.2f}×; "
                       f"p99 {other['p99_ms']:.1f} vs {base['p99_ms']:.1f} ms; "
                       f"p50 {other['p50_ms']:.1f} vs {base['p50_ms']:.1f} ms; "
                       f"mean batch {other['mean_batch']} vs {base['mean_batch']}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workloads", default="sleep,torch")
    parser.add_argument("--servers", default="fastdeploy,fastdeploy311,litserve,tuned,target,floor,floor2,floor3",
                        help="any of fastdeploy, fastdeploy311, litserve, tuned, target, redis, floor, floor2, floor3")
    parser.add_argument("--output", default="compare", help="results file name, without extension")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="the Redis of the 'redis' server")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)),
                        help="the points to measure (the floors are measured at 1 only)")
    args = parser.parse_args()
    concurrency = tuple(int(c) for c in args.concurrency.split(","))
    command = "python benchmarks/compare.py " + " ".join(sys.argv[1:])
    kinds = args.servers.split(",")
    report = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
              "duration_s": args.duration, "repeats": args.repeats, "workloads": {}}
    report["ceiling"] = loadgen_ceiling(min(args.duration, 5), concurrency)
    print("load generator ceiling:", report["ceiling"], flush=True)
    for workload in args.workloads.split(","):
        recipe = RECIPES[workload]
        rows, model_ms_by_repeat = [], {}
        for repeat in range(1, args.repeats + 1):
            model_ms = model_ms_by_repeat[repeat] = model_times_ms(recipe)  # timed again: the host drifts
            print(f"{workload} model alone, rep {repeat}:", json.dumps(model_ms), flush=True)
            for kind in kinds:
                if kind in FLOORS and (workload != "sleep" or 1 not in concurrency):
                    continue
                server = start_server(kind, recipe, args.redis_url)
                try:
                    server.wait_ready()
                    for c in (1,) if kind in FLOORS else concurrency:
                        row = {"repeat": repeat, "server": server.name, **measure(server, c, args.duration, model_ms)}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                finally:
                    server.stop()
        variants = {title: variant(rows, prefix) for title, prefix in VARIANTS.items()}
        report["workloads"][workload] = {"model_ms": model_ms_by_repeat, "rows": rows, "ratios": ratios(rows),
                                         "variants": {title: lines for title, lines in variants.items() if lines}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(report, indent=1))
    (RESULTS / f"{args.output}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
