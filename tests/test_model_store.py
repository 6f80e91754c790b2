"""The shipped models in model_store/ are what a fresh training gives (`make model`): the
notebook's (`train`) and the counting model `tune` picks on a held-out tenth of the corpus."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors import safe_open

from service.lm.corpus import read_words
from service.lm.store import load_model
from service.lm.train import train_to_file
from tests.conftest import CORPUS, ROOT, SHIPPED_MODEL, neural_config
from tests.test_cli import cli

TUNED_MODEL = ROOT / "model_store" / "civil-words-tuned.safetensors"
TUNE_ARGS = ["--holdout", "0.1", "--language", "fr"]  # as the Makefile's `model` target runs it


@pytest.mark.parametrize("source", ["file", "memory"])
def test_shipped_model_equals_a_fresh_training(tmp_path, source):
    """`make model` (the file, streamed) and a list in memory both give the shipped model."""
    shipped = load_model(SHIPPED_MODEL)
    fresh_path = tmp_path / "fresh.safetensors"
    train_to_file(CORPUS if source == "file" else read_words(CORPUS), fresh_path, language="fr")
    fresh = load_model(fresh_path)
    assert shipped.alphabet == fresh.alphabet
    assert torch.equal(shipped.counts, fresh.counts)
    assert torch.equal(shipped.W, fresh.W), "model_store/ is stale: run `make model`"
    assert shipped.version == fresh.version
    assert shipped.config == fresh.config
    assert fresh.metadata["descent"]["path"] == "float64 descent"
    assert fresh.metadata["descent"]["warning"] is None


def test_shipped_model_describes_its_corpus():
    m = load_model(SHIPPED_MODEL)
    assert m.metadata["corpus_sha256"] == hashlib.sha256(CORPUS.read_bytes()).hexdigest()
    assert m.metadata["config"] == neural_config(language="fr")
    assert m.metadata["examples"] == 65725 and len(m.alphabet) == 41


def _tensors(path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


@pytest.fixture(scope="module")
def fresh_tune(tmp_path_factory):
    """`civil-words tune` run as `make model` runs it, and what it printed (--json)."""
    out = tmp_path_factory.mktemp("tuned") / "tuned.safetensors"
    r = cli("tune", "--words", str(CORPUS), *TUNE_ARGS, "--out", str(out), "--json", check=True)
    return out, json.loads(r.stdout)


def test_the_makefile_tunes_as_this_test_does():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (line,) = [t for t in makefile.splitlines() if t.startswith("\t$(BIN)/civil-words tune")]
    assert " ".join(TUNE_ARGS) in line and "$(TUNED)" in line
    (line,) = [t for t in makefile.splitlines() if t.startswith("\t$(BIN)/civil-words train")]
    assert "--language fr" in line and "$(MODEL)" in line
    assert "TUNED  := model_store/civil-words-tuned.safetensors" in makefile


def test_tuned_model_equals_a_fresh_tune(fresh_tune):
    """The same tensors (sparse counts, word lists), alphabet and config as a fresh tune."""
    path, printed = fresh_tune
    shipped, fresh = load_model(TUNED_MODEL), load_model(path)
    assert shipped.alphabet == fresh.alphabet
    expected = _tensors(path)
    got = _tensors(TUNED_MODEL)
    assert got.keys() == expected.keys()
    for name, t in expected.items():
        assert got[name].dtype == t.dtype and torch.equal(got[name], t), (
            f"model_store/ is stale ({name}): run `make model`"
        )
    assert shipped.config == fresh.config
    assert shipped.version == fresh.version == printed["best"]["version"]
    for key in ("holdout", "nll", "loss", "examples", "corpus_words"):
        assert shipped.metadata[key] == fresh.metadata[key], key
    best = printed["best"]
    assert (shipped.order, shipped.config["smoothing"]) == (best["order"], best["smoothing"])
    assert shipped.metadata["holdout"]["nll"] == best["holdout_nll"]
    # It is the candidate of least held-out NLL.
    assert best["holdout_nll"] == min(c["holdout_nll"] for c in printed["candidates"])


def test_tuned_model_describes_its_corpus_and_split():
    m = load_model(TUNED_MODEL)
    assert m.metadata["format"] == "civil-words/3" and m.W is None and m.counts is None
    assert m.metadata["corpus_sha256"] == hashlib.sha256(CORPUS.read_bytes()).hexdigest()
    assert m.config["method"] == "counts" and m.config["holdout"] == 0.1
    assert m.config["language"] == "fr"
    assert m.config["split_seed"] == neural_config()["split_seed"]  # the default split seed
    assert all(m.config[k] is None for k in ("steps", "lr", "reg", "seed"))
    assert m.metadata["corpus_words"] == 7072
    assert m.metadata["holdout"]["words"] + m.metadata["holdout"]["skipped"] == round(0.1 * 7072)
