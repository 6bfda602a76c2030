"""What batching buys a recipe on this machine: throughput at each batch size vs batch size 1.

    python benchmarks/batching_gain.py recipes/torch_image_classifier [--max-batch-size 64]

Times the recipe's predictor (stage 1) exactly as the loop's tuner does
(fastest of 3 runs after a warm-up, inputs cycled from example.py), prints
the table, the size the tuner picks, and its speed-up over batch size 1.
"""

from __future__ import annotations

import argparse
import platform
import sys

from fastdeploy.recipe import load_recipe, run_checked
from fastdeploy.tuning import candidate_sizes, time_batch, tune_batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--max-batch-size", type=int, default=64)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    stage = recipe.stage(1)
    example = recipe.example(1)

    def run(inputs: list) -> None:
        run_checked(stage, inputs)

    print(f"$ python benchmarks/batching_gain.py {args.recipe} --max-batch-size {args.max_batch_size}")
    print(f"({platform.machine()}, Python {platform.python_version()}, {sys.platform})\n")
    print("| batch size | batch ms | items/s | vs batch 1 |")
    print("|---|---|---|---|")
    single = None
    for size in candidate_sizes(args.max_batch_size):
        inputs = [example[i % len(example)] for i in range(size)]
        ms = time_batch(run, inputs, repeats=3)
        per_s = size / ms * 1000
        single = single or per_s
        print(f"| {size} | {ms:.2f} | {per_s:.1f} | {per_s / single:.2f}× |")
    chosen, timings = tune_batch_size(run, example, max_batch_size=args.max_batch_size,
                                      max_batch_latency_ms=1000, min_gain=0.1)
    gain = next(t.items_per_s for t in timings if t.batch_size == chosen) / timings[0].items_per_s
    print(f"\ntuner's choice (default settings): batch size {chosen}, {gain:.2f}× the throughput of batch size 1")


if __name__ == "__main__":
    main()
