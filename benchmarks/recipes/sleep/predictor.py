import os
import time

BATCH_LOG = os.environ.get("BENCH_BATCH_LOG")  # the benchmark reads batch sizes from here, for every server


def predictor(inputs, batch_size=None):
    """Costs no CPU: 20 ms per batch plus 1 ms per item, so only the serving stack's cost shows."""
    time.sleep(0.020 + 0.001 * len(inputs))
    if BATCH_LOG:
        with open(BATCH_LOG, "a") as log:
            log.write(f"{len(inputs)}\n")
    return list(inputs)
