"""`train --holdout F --split-seed S`: the split is the spec's, recomputed here with torch
directly; the model trains on the other words in their order; the held-out figures are stored."""

from __future__ import annotations

import pytest
import torch

from service.lm.corpus import read_words
from service.lm.store import load_model
from service.lm.train import Split, train_to_file
from tests.reference import run_counting, run_notebook
from tests.test_cli import cli


def spec_split(words: list[str], F: float, S: int) -> tuple[list[str], list[str]]:
    """SPEC section 5, word for word: k = round(F x len(words)) positions of
    randperm(len(words), generator=Generator().manual_seed(S)) are held out."""
    k = round(F * len(words))
    held = set(torch.randperm(len(words), generator=torch.Generator().manual_seed(S))[:k].tolist())
    train = [w for i, w in enumerate(words) if i not in held]
    return train, [w for i, w in enumerate(words) if i in held]


def write(path, words):
    path.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "F", "S"), [("greek-cyrillic", 0.3, 5), ("digits", 0.1, 0)])
def test_neural_model_trains_on_the_other_words_as_the_notebook(word_lists, tmp_path, name, F, S):
    words = read_words(word_lists[name]).words
    train_words, held_words = spec_split(words, F, S)
    out = tmp_path / "m.safetensors"
    cli(
        "train", "--words", str(word_lists[name]), "--out", str(out), "--holdout", str(F),
        "--split-seed", str(S), "--quiet", check=True,
    )  # fmt: skip
    m = load_model(out)
    assert m.words == tuple(sorted(set(train_words)))
    assert m.heldout == tuple(sorted(set(held_words)))
    ref = run_notebook(write(tmp_path / "train.txt", train_words))
    assert m.alphabet == tuple(ref.namespace["itoc"][i] for i in range(len(m.alphabet)))
    assert (m.W - ref.W).abs().max().item() <= 1e-4
    assert m.metadata["loss_first"] == pytest.approx(ref.losses[0], abs=1e-4)
    assert m.metadata["loss_last"] == pytest.approx(ref.losses[-1], abs=1e-4)
    assert m.metadata["corpus_words"] == len(words)
    assert m.config["holdout"] == F and m.config["split_seed"] == S
    h = m.metadata["holdout"]
    assert h["words"] + h["skipped"] == len(held_words) and h["nll"] > 0


def test_counts_model_on_the_shared_corpus_split(word_lists, tmp_path):
    words = read_words(word_lists["civil"]).words
    train_words, held_words = spec_split(words, 0.25, 2147483647)
    out = tmp_path / "m.safetensors"
    r = cli(
        "train", "--words", str(word_lists["civil"]), "--out", str(out), "--method", "counts",
        "--holdout", "0.25", check=True,
    )  # fmt: skip
    assert (
        f"held out: {len(held_words) - load_model(out).metadata['holdout']['skipped']}" in r.stdout
    )
    ref = run_counting(write(tmp_path / "train.txt", train_words))
    m = load_model(out)
    assert torch.equal(m.counts, ref.N) and len(held_words) == round(0.25 * 7072) == 1768


@pytest.mark.parametrize(("F", "k"), [(0.5, 2), (0.3, 2), (0.1, 0), (0.7, 4), (0.9, 4)])
def test_k_is_pythons_round(tmp_path, F, k):
    """5 words: 2.5 -> 2 and 0.5 -> 0 (a half goes to the even neighbour), 1.5 -> 2, 4.5 -> 4."""
    words = ["a", "b", "ab", "ba", "aab"]
    out = tmp_path / "m.safetensors"
    train_to_file(write(tmp_path / "w.txt", words), out, split=Split(F, 3))
    m = load_model(out)
    h = m.metadata["holdout"]
    assert h["words"] + h["skipped"] == k
    assert len(m.words) == len(set(spec_split(words, F, 3)[0]))
    if k == 0:
        assert h == {"nll": None, "examples": 0, "words": 0, "skipped": 0} and m.heldout is None


def test_a_held_out_symbol_is_skipped(tmp_path):
    words = ["ab", "ba", "aab", "zz", "bab"]
    S = next(s for s in range(100) if 3 in torch.randperm(5, generator=torch.Generator()
             .manual_seed(s))[:2].tolist())  # fmt: skip
    out = tmp_path / "m.safetensors"
    train_to_file(write(tmp_path / "w.txt", words), out, split=Split(0.4, S))
    m = load_model(out)
    assert "z" not in m.alphabet and "zz" in m.heldout
    assert m.metadata["holdout"]["skipped"] == 1 and m.metadata["holdout"]["words"] == 1


def test_repeated_words_count_each_time(tmp_path):
    """A word held out at two positions counts twice, as in the notebook's list."""
    words = ["ab", "ab", "ab", "ba", "ab", "ab"]
    out = tmp_path / "m.safetensors"
    train_to_file(write(tmp_path / "w.txt", words), out, split=Split(0.5, 1))
    train_words, held_words = spec_split(words, 0.5, 1)
    m = load_model(out)
    assert m.metadata["holdout"]["words"] == len(held_words) == 3
    assert m.metadata["holdout"]["examples"] == sum(len(w) + 1 for w in held_words)
    assert int(m.counts.sum()) == sum(len(w) + 1 for w in train_words)


def test_a_file_and_the_same_list_in_memory_give_the_same_model(word_lists, tmp_path):
    split = Split(holdout=0.2, split_seed=4)
    a = train_to_file(word_lists["greek-cyrillic"], tmp_path / "a.safetensors", split=split)
    words = read_words(word_lists["greek-cyrillic"])
    b = train_to_file(words, tmp_path / "b.safetensors", split=split)
    assert a.version == b.version and a.holdout == b.holdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--holdout", "1"], "0 <= F < 1"),
        (["--holdout", "-0.1"], ">= 0"),
        (["--holdout", "nan"], "finite"),
        (["--split-seed", "-1"], "out of range"),
        (["--method", "counts", "--smoothing", "0"], "> 0"),
        (["--method", "counts", "--smoothing", "inf"], "finite"),
        (["--method", "counts", "--lr", "3"], "--lr: options of the neural method"),
        (["--smoothing", "2"], "--smoothing: an option of --method counts"),
        (["--method", "bigram"], "invalid choice"),
    ],
)
def test_bad_training_options_are_usage_errors(args, message):
    r = cli("train", "--words", "w.txt", "--out", "m.safetensors", *args)
    assert r.returncode == 2 and "usage:" in r.stderr and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_nothing_left_to_train_on_is_refused(tmp_path):
    words = write(tmp_path / "w.txt", ["seul"])
    r = cli("train", "--words", str(words), "--out", str(tmp_path / "m"), "--holdout", "0.9")
    assert r.returncode == 1 and str(words) in r.stderr and "no training words left" in r.stderr
