"""A small convolutional image classifier in torch, served on CPU.

The weights are random (seeded): torchvision's pretrained weights cannot be
downloaded here, and what this recipe shows is the serving path: uploaded
image files arrive as paths on tmpfs (``file_inputs: path`` in
fastdeploy.yaml), are decoded with Pillow and classified in one batch.
"""

import numpy as np
import torch
from PIL import Image

torch.set_num_threads(1)  # one loop process per core scales better than threads inside one
torch.manual_seed(0)

LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SIDE = 64

MODEL = torch.nn.Sequential(
    torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
    torch.nn.Flatten(), torch.nn.Linear(64, len(LABELS)),
).eval()


def load(path: str) -> np.ndarray:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB").resize((SIDE, SIDE)), dtype=np.float32)
    return pixels.transpose(2, 0, 1) / 255.0


def predictor(inputs, batch_size):
    batch = torch.from_numpy(np.stack([load(path) for path in inputs]))
    with torch.inference_mode():
        probabilities = MODEL(batch).softmax(dim=1)
    top = probabilities.argmax(dim=1)
    return [{"label": LABELS[int(i)], "probability": round(float(p[i]), 4)} for i, p in zip(top, probabilities)]
