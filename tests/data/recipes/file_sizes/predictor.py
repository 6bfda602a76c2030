"""A test recipe that receives uploaded files as paths on tmpfs."""

import os


def predictor(inputs, batch_size):
    outputs = []
    for value in inputs:
        if isinstance(value, str) and os.path.isfile(value):
            with open(value, "rb") as f:
                head = f.read(16)
            outputs.append({"path": value, "size": os.path.getsize(value), "head": head.decode(errors="replace")})
        else:
            outputs.append({"value": value})
    return outputs
