"""Streams its answer word by word, like a text generator decoding one token per step.

A generator predictor yields, at every step, a list with one chunk per input
(None once an input has nothing more), so concurrent requests share a batch
while each gets its own stream.
"""

import time

STEP_S = 0.05  # one "decoding step"


def predictor(inputs, batch_size):
    answers = [f"you said: {text}".split() for text in inputs]
    for step in range(max(len(words) for words in answers)):
        time.sleep(STEP_S)
        yield [words[step] + " " if step < len(words) else None for words in answers]
