"""The shipped model in model_store/ is what a fresh training gives (`make model`)."""

from __future__ import annotations

import hashlib

import pytest
import torch

from service.lm.corpus import read_words
from service.lm.store import load_model
from service.lm.train import train_to_file
from tests.conftest import CORPUS, SHIPPED_MODEL, neural_config


@pytest.mark.parametrize("source", ["file", "memory"])
def test_shipped_model_equals_a_fresh_training(tmp_path, source):
    """`make model` (the file, streamed) and a list in memory both give the shipped model."""
    shipped = load_model(SHIPPED_MODEL)
    fresh_path = tmp_path / "fresh.safetensors"
    train_to_file(CORPUS if source == "file" else read_words(CORPUS), fresh_path)
    fresh = load_model(fresh_path)
    assert shipped.alphabet == fresh.alphabet
    assert torch.equal(shipped.counts, fresh.counts)
    assert torch.equal(shipped.W, fresh.W), "model_store/ is stale: run `make model`"
    assert shipped.version == fresh.version
    assert fresh.metadata["descent"]["path"] == "float64 descent"
    assert fresh.metadata["descent"]["warning"] is None


def test_shipped_model_describes_its_corpus():
    m = load_model(SHIPPED_MODEL)
    assert m.metadata["corpus_sha256"] == hashlib.sha256(CORPUS.read_bytes()).hexdigest()
    assert m.metadata["config"] == neural_config()
    assert m.metadata["examples"] == 65725 and len(m.alphabet) == 41
