import os
import time

# compare.py reads, for every server alike, each batch's size and the predictor's own time in it from here
BATCH_LOG = os.environ.get("BENCH_BATCH_LOG")
# 20 ms unless set: benchmarks/ab.py can vary it (variant "NAME=.,BENCH_SLEEP_BASE_MS=2") to see what
# the processes' idling through the predict costs the request around it (docs/performance.md)
BASE_S = float(os.environ.get("BENCH_SLEEP_BASE_MS", "20")) / 1000


def predictor(inputs, batch_size=None):
    """Costs no CPU: 20 ms (BENCH_SLEEP_BASE_MS) per batch plus 1 ms per item, so only the serving
    stack's cost shows."""
    started = time.perf_counter()
    time.sleep(BASE_S + 0.001 * len(inputs))
    if BATCH_LOG:
        with open(BATCH_LOG, "a") as log:
            log.write(f"{len(inputs)} {(time.perf_counter() - started) * 1000:.3f}\n")
    return list(inputs)
