"""Answers each prompt with a PNG file: a procedural image seeded by the prompt.

It stands in for an image model; what it shows is the file answer: the
predictor writes files under $FASTDEPLOY_OUTPUT_DIR and returns their paths,
and fastdeploy sends the bytes to a client that asks for image/png (or base64
inside JSON otherwise). Paths outside that folder are refused.
"""

import hashlib
import os
import uuid

from PIL import Image, ImageDraw

SIZE = 64


def render(prompt: str, path: str) -> None:
    digest = hashlib.sha256(prompt.encode()).digest()
    image = Image.new("RGB", (SIZE, SIZE), tuple(digest[:3]))
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x0, y0, x1, y1 = (digest[3 + 4 * i + k] % SIZE for k in range(4))
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=tuple(digest[i:i + 3]))
    image.save(path, format="PNG")


def predictor(inputs, batch_size):
    out_dir = os.environ["FASTDEPLOY_OUTPUT_DIR"]
    paths = []
    for prompt in inputs:
        path = os.path.join(out_dir, f"{uuid.uuid4().hex}.png")
        render(str(prompt), path)
        paths.append(path)
    return paths
