"""The benchmark's torch workload: a small MLP on CPU, one thread, random init.

Each input is an integer seed; the predictor turns it into a 256-float
feature vector, so request bodies stay tiny and the model's time dominates.
"""

import os
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
BATCH_LOG = os.environ.get("BENCH_BATCH_LOG")  # compare.py reads each batch's size and own time from here
FEATURES = torch.arange(256, dtype=torch.float32)
MODEL = torch.nn.Sequential(
    torch.nn.Linear(256, 4096), torch.nn.ReLU(),
    torch.nn.Linear(4096, 4096), torch.nn.ReLU(),
    torch.nn.Linear(4096, 10),
).eval()


def predictor(inputs, batch_size=None):
    started = time.perf_counter()
    seeds = torch.tensor([float(x) for x in inputs]).unsqueeze(1)
    with torch.inference_mode():
        labels = MODEL(torch.sin(seeds * FEATURES / 7.0)).argmax(dim=1).tolist()
    if BATCH_LOG:
        with open(BATCH_LOG, "a") as log:
            log.write(f"{len(inputs)} {(time.perf_counter() - started) * 1000:.3f}\n")
    return labels
