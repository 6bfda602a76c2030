"""A streaming predictor: a generator that yields, at each step, one chunk per input (None when done)."""

import time


def predictor(inputs, batch_size):
    words = [str(text).split() for text in inputs]
    for step in range(max(len(w) for w in words)):
        time.sleep(0.01)  # stands in for one decoding step of a model
        yield [w[step] if step < len(w) else None for w in words]
