"""A test recipe with a bug: asked to, it returns a path outside its output folder."""

import os
import uuid


def predictor(inputs, batch_size):
    outputs = []
    for value in inputs:
        if value == "leak":
            outputs.append("/etc/hostname")
            continue
        folder = os.path.join(os.environ["FASTDEPLOY_OUTPUT_DIR"], uuid.uuid4().hex)
        os.mkdir(folder)
        path = os.path.join(folder, f"{value}.txt")
        with open(path, "w") as f:
            f.write(f"file for {value}")
        outputs.append(path)
    return outputs
