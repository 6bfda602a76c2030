"""A test recipe: slow enough to kill mid-batch, and able to fail on demand."""

import os
import time

SLEEP_S = float(os.environ.get("SLOW_RECIPE_SLEEP_S", "0.2"))


def predictor(inputs, batch_size):
    if "raise" in inputs:
        raise ValueError("asked to raise")
    time.sleep(SLEEP_S)
    outputs = [{"echo": x, "batch": len(inputs)} for x in inputs]
    if "short" in inputs:
        return outputs[:-1]
    return outputs
