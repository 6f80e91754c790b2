"""Model files of format 3 (the sparse n-gram counts of a model of order N): a valid file
round-trips; hostile ones are refused, each with a `ModelFileError` naming the file and the
reason, by `load_model` and by `civil-words check` (exit 1, no traceback); files of formats 2
and 1 still load and serve.

Each hostile file is a valid one rewritten with safetensors' own `save_file` after one change:
with its version recomputed (`sparse_version`) when the change is to a tensor, so that the
refusal is the check the case is about and not the version's, and left stale where the case is
the version itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from service.lm.methods import AddK, KneserNey, sparse_tensors
from service.lm.ngram import NgramCounts, add_k, kneser_ney
from service.lm.ready import open_model
from service.lm.store import (
    FORMAT,
    LEGACY_FORMAT,
    SPARSE_FORMAT,
    ModelFileError,
    load_model,
    sparse_version,
)
from service.lm.train import Split, train_to_file
from tests.conftest import CORPUS, LEGACY_MODEL, SHIPPED_MODEL

WORDS = [
    "maison",
    "loi",
    "code",
    "civil",
    "article",
    "juge",
    "époux",
    "bien",
    "biens",
    "enfant",
    "enfants",
    "mariage",
    "contrat",
    "dette",
    "partage",
]


def words_file(directory: Path) -> Path:
    path = directory / "words.txt"
    path.write_text("".join(w + "\n" for w in WORDS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def goods(tmp_path_factory) -> dict[str, Path]:
    """Valid format-3 files: Kneser–Ney of orders 2, 3, 5 (held out: a tenth) and 8, add-k of
    order 3."""
    d = tmp_path_factory.mktemp("good")
    src = words_file(d)
    out = {}
    for name, method, split in [
        ("kn2", KneserNey(2), Split()),
        ("kn3", KneserNey(3), Split()),
        ("kn5", KneserNey(5), Split(0.1, 3)),
        ("kn8", KneserNey(8), Split()),
        ("addk3", AddK(0.5, 3), Split()),
    ]:
        out[name] = d / f"{name}.safetensors"
        train_to_file(src, out[name], method, split=split)
    return out


# --- a valid file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "order", "smoothing"),
    [("kn3", 3, "kneser-ney"), ("addk3", 3, 0.5), ("kn5", 5, "kneser-ney")],
)
def test_a_format_3_file_round_trips(goods, name, order, smoothing):
    f = load_model(goods[name])
    assert f.metadata["format"] == SPARSE_FORMAT
    assert f.W is None and f.counts is None
    assert f.order == order and f.config["smoothing"] == smoothing
    held = set(f.heldout or ())
    train = [w for w in WORDS if w not in held]
    assert f.words == tuple(sorted(train))
    assert (f.heldout is not None) == (name == "kn5")
    # The stored tensors are the counts' sparse tensors, bit for bit, of the documented dtypes.
    ng = NgramCounts.from_words(train, order)
    want = sparse_tensors(ng)
    assert set(f.tensors) == set(want)
    for k, t in want.items():
        assert f.tensors[k].dtype == t.dtype and torch.equal(f.tensors[k], t), k
    assert f.tensors["contexts"].shape[1] == order - 1
    assert f.metadata["examples"] == int(want["ngram_count"].sum())
    # The version is the documented hash of every tensor, word lists included.
    with safe_open(str(goods[name]), framework="pt") as g:
        stored = {k: g.get_tensor(k) for k in g.keys()}
    assert f.version == sparse_version(f.alphabet, stored)
    # And the model made from the file is the one made from the counts.
    lm = kneser_ney(ng).lm if smoothing == "kneser-ney" else add_k(ng, smoothing)
    m = open_model(goods[name])
    assert np.array_equal(m.lm.logP, lm.logP) and np.array_equal(m.lm.next, lm.next)
    assert list(m.lm.contexts) == list(lm.contexts) and m.lm.start == lm.start


def test_rewriting_a_valid_file_keeps_it_valid(goods, tmp_path):
    """The control of the cases below: the rewrite itself changes nothing."""
    out = rewrite(goods["kn3"], tmp_path / "same.safetensors", lambda t, m: None)
    assert load_model(out).version == load_model(goods["kn3"]).version


# --- hostile files ---------------------------------------------------------------------------


def _tensors_and_meta(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k).clone() for k in f.keys()}, dict(f.metadata())


def rewrite(good: Path, path: Path, mutate, version: str = "recompute") -> Path:
    """`good` saved again after `mutate(tensors, meta)`; the version recomputed from the new
    tensors, or left as it was ("stale")."""
    tensors, meta = _tensors_and_meta(good)
    mutate(tensors, meta)
    if version == "recompute":
        alphabet = tuple(json.loads(meta["alphabet"]))
        meta["version"] = sparse_version(alphabet, tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
    return path


def _tensor(name: str, fn):
    def mutate(tensors, meta):
        tensors[name] = fn(tensors[name].clone())

    return mutate


def _set(t: torch.Tensor, index, value) -> torch.Tensor:
    t[index] = value
    return t


def _config(**changes):
    def mutate(tensors, meta):
        meta["config"] = json.dumps({**json.loads(meta["config"]), **changes})

    return mutate


def _drop_config_order(tensors, meta):
    config = json.loads(meta["config"])
    del config["order"]
    meta["config"] = json.dumps(config)


def _swap_context_rows(tensors, meta):
    ctx = tensors["contexts"]
    ctx[[1, 2]] = ctx[[2, 1]]


def _duplicate_context_row(tensors, meta):
    ctx = tensors["contexts"]
    ctx[2] = ctx[1]


def _dot_after_a_symbol(tensors, meta):
    ctx = tensors["contexts"]
    row = int(torch.nonzero(ctx[:, 0] > 0)[0])  # a context that begins with a symbol
    ctx[row, -1] = 0


def _no_start_context(tensors, meta):
    """Context 0 (all '.') and its n-grams removed, the other n-grams renumbered."""
    gc = tensors["ngram_context"]
    keep = gc != 0
    tensors["contexts"] = tensors["contexts"][1:].clone()
    tensors["ngram_context"] = (gc[keep] - 1).clone()
    for k in ("ngram_symbol", "ngram_count"):
        tensors[k] = tensors[k][keep].clone()
    meta["examples"] = str(int(tensors["ngram_count"].sum()))


def _first_context_with(tensors, grams: int) -> torch.Tensor:
    """The positions of the n-grams of the first context that has at least `grams` of them."""
    gc = tensors["ngram_context"]
    for c in range(int(gc.max()) + 1):
        where = torch.nonzero(gc == c).flatten()
        if len(where) >= grams:
            return where
    raise AssertionError("no such context")


def _unsorted_symbols(tensors, meta):
    i, j = _first_context_with(tensors, 2)[:2].tolist()
    gs = tensors["ngram_symbol"]
    gs[[i, j]] = gs[[j, i]]


def _duplicate_symbol(tensors, meta):
    i, j = _first_context_with(tensors, 2)[:2].tolist()
    gs = tensors["ngram_symbol"]
    gs[j] = gs[i]


def _context_without_ngrams(tensors, meta):
    """Context 2's n-grams moved to context 1: context 2 has none left."""
    gc = tensors["ngram_context"]
    gc[gc == 2] = 1


def _unsorted_ngram_context(tensors, meta):
    gc = tensors["ngram_context"]
    last = int(torch.nonzero(gc == 1)[-1])
    gc[[last, last + 1]] = gc[[last + 1, last]]  # ..., 2, 1, ...


def _symbols_not_the_alphabet(tensors, meta):
    """A symbol of the alphabet that no n-gram predicts (its n-grams made another symbol's)."""
    gs = tensors["ngram_symbol"]
    V = len(json.loads(meta["alphabet"]))
    gs[gs == V - 1] = V - 2


def _alphabet_too_large(tensors, meta):
    """An alphabet whose order-8 keys overflow int64 (max_symbols(8) = 234)."""
    alphabet = json.loads(meta["alphabet"])
    extra = [chr(0x4E00 + i) for i in range(300)]
    meta["alphabet"] = json.dumps(alphabet + extra, ensure_ascii=False)


def _overflowing_counts(tensors, meta):
    """Counts whose int64 sum wraps around to a small number, stated as the examples."""
    gn = tensors["ngram_count"]
    gn[:4] = 2**62  # 4 * 2**62 = 2**64: the int64 sum wraps to the other counts' sum
    meta["examples"] = str(int(gn.numpy().sum()))


def _sparse_with_w(tensors, meta):
    V = len(json.loads(meta["alphabet"]))
    tensors["W"] = torch.zeros((V, V))


# name, good file, mutation, version, phrase of the reason
HOSTILE = [
    # dtypes
    ("contexts-int64", "kn3", _tensor("contexts", lambda t: t.long()), "contexts is int64"),
    ("ngram-count-int32", "kn3", _tensor("ngram_count", lambda t: t.int()), "ngram_count is int32"),
    ("ngram-symbol-float", "kn3", _tensor("ngram_symbol", lambda t: t.float()), "wrong dtype"),
    ("ngram-context-int16", "kn3", _tensor("ngram_context", lambda t: t.short()), "wrong dtype"),
    # shapes
    ("contexts-1d", "kn3", _tensor("contexts", lambda t: t.flatten()), "wrong shape: contexts"),
    ("contexts-order-9", "kn3",
     _tensor("contexts", lambda t: torch.cat([torch.zeros((len(t), 6), dtype=t.dtype), t], 1)),
     "wrong shape: contexts"),
    ("contexts-empty", "kn3", _tensor("contexts", lambda t: t[:0]), "wrong shape: contexts"),
    ("ngram-symbol-shorter", "kn3", _tensor("ngram_symbol", lambda t: t[:-1]), "of one length"),
    ("ngram-count-2d", "kn3", _tensor("ngram_count", lambda t: t[:, None]), "of one length"),
    # contexts
    ("contexts-unsorted", "kn3", _swap_context_rows, "contexts are not sorted and distinct"),
    ("contexts-duplicate", "kn3", _duplicate_context_row, "contexts are not sorted and distinct"),
    ("dot-after-a-symbol", "kn5", _dot_after_a_symbol, "'.' after a symbol"),
    ("no-start-context", "kn3", _no_start_context, "lack the start context"),
    ("context-symbol-out-of-range", "kn3", _tensor("contexts", lambda t: _set(t, (1, -1), 99)),
     "contexts hold a symbol index outside the alphabet"),
    ("context-symbol-negative", "kn3", _tensor("contexts", lambda t: _set(t, (1, -1), -1)),
     "contexts hold a symbol index outside the alphabet"),
    # ngram_context
    ("ngram-context-out-of-range", "kn3", _tensor("ngram_context", lambda t: _set(t, -1, 10**6)),
     "ngram_context holds an index outside contexts"),
    ("ngram-context-negative", "kn3", _tensor("ngram_context", lambda t: _set(t, 0, -1)),
     "ngram_context holds an index outside contexts"),
    ("ngram-context-unsorted", "kn3", _unsorted_ngram_context, "ngram_context is not sorted"),
    ("context-without-ngrams", "kn3", _context_without_ngrams, "a context has no n-gram"),
    # symbols
    ("symbol-out-of-range", "kn3", _tensor("ngram_symbol", lambda t: _set(t, 0, 99)),
     "ngram_symbol holds a symbol index outside the alphabet"),
    ("symbol-negative", "kn3", _tensor("ngram_symbol", lambda t: _set(t, 0, -1)),
     "ngram_symbol holds a symbol index outside the alphabet"),
    ("symbols-unsorted", "kn3", _unsorted_symbols, "ngram_symbol values are not sorted"),
    ("symbols-duplicate", "kn3", _duplicate_symbol, "ngram_symbol values are not sorted"),
    ("symbols-not-the-alphabet", "kn3", _symbols_not_the_alphabet, "symbols are not the alphabet"),
    ("alphabet-too-large", "kn8", _alphabet_too_large, "too large for order 8"),
    # counts
    ("count-zero", "kn3", _tensor("ngram_count", lambda t: _set(t, 0, 0)), "not positive"),
    ("count-negative", "kn3", _tensor("ngram_count", lambda t: _set(t, 3, -2)), "not positive"),
    ("counts-overflow", "kn3", _overflowing_counts, "ngram_count"),
    # metadata
    ("examples-not-the-sum", "kn3",
     lambda t, m: m.update(examples=str(int(t["ngram_count"].sum()) + 1)),
     "'examples' is not the sum of ngram_count"),
    ("order-not-the-contexts", "kn3", _config(order=4), "order 4 does not match contexts (N = 3)"),
    ("order-missing", "kn3", _drop_config_order, "metadata 'config' is not"),
    ("add-k-order-5", "kn5", _config(smoothing=0.5), "bad values for the counts method"),
    # add-k of order 2 is format 2's (W and counts): sparse counts at order 2 are Kneser–Ney's.
    ("add-k-order-2", "kn2", _config(smoothing=0.5), "bad values for the counts method"),
    ("unknown-smoothing", "kn3", _config(smoothing="witten-bell"), "bad values for the counts"),
    ("neural-sparse", "kn3", _config(method="neural", steps=600, lr=50.0, reg=0.01, seed=1),
     "bad values for the neural method"),
    ("format-2-tag", "kn3", lambda t, m: m.update(format=FORMAT), "expected tensors W, counts"),
    ("format-3-with-w", "kn3", _sparse_with_w, "expected tensors contexts"),
    # the version
    ("altered-count", "kn3", _tensor("ngram_count", lambda t: _set(t, 0, t[0] + 1)),
     "version does not match the content"),
    ("altered-words", "kn3",
     _tensor("words", lambda t: _set(t, 0, ord("n"))),
     "version does not match the content"),
]  # fmt: skip
STALE = {"altered-count", "altered-words"}


@pytest.fixture(scope="module")
def hostile(goods, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    return {
        name: rewrite(
            goods[base],
            d / f"{name}.safetensors",
            mutate,
            "stale" if name in STALE else "recompute",
        )
        for name, base, mutate, _ in HOSTILE
    }


def _case(name: str, reason: str):
    return pytest.param(name, reason, id=name)


@pytest.mark.parametrize(("name", "reason"), [_case(h[0], h[3]) for h in HOSTILE])
def test_hostile_format_3_file_is_refused(hostile, name, reason, capsys):
    path = hostile[name]
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    assert e.value.path == str(path)
    assert reason in e.value.reason, e.value.reason
    assert str(e.value) == f"model file {path}: {e.value.reason}"
    # The command's own function (the processes below run it for real): exit 1, the message.
    from service.cli import main

    assert main(["check", "--model", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"civil-words: error: model file {path}: {e.value.reason}" in err


def cli(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("civil-words")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "service"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, encoding="utf-8", timeout=300
    )


def test_civil_words_check_refuses_them(hostile, goods):
    """A few of them through the real command (each process is mostly importing torch)."""
    names = ["symbols-unsorted"]
    paths = [hostile[n] for n in names] + [goods["kn5"]]
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        runs = list(pool.map(lambda p: cli("check", "--model", str(p)), paths))
    for path, run in zip(paths[:-1], runs[:-1], strict=True):
        assert run.returncode == 1, run.stdout
        assert f"model file {path}:" in run.stderr and "Traceback" not in run.stderr
    assert runs[-1].returncode == 0, runs[-1].stderr
    assert "order 5" in runs[-1].stdout


# --- older formats ---------------------------------------------------------------------------


def test_format_2_still_loads_and_serves():
    f = load_model(SHIPPED_MODEL)
    assert f.metadata["format"] == FORMAT and f.order == 2
    V = len(f.alphabet)
    assert f.W.shape == f.counts.shape == (V, V) and set(f.tensors) == {"W", "counts"}
    m = open_model(SHIPPED_MODEL)
    assert m.lm.order == 2 and m.lm.S == V and m.lm.start == 0
    assert np.array_equal(m.lm.next, np.broadcast_to(np.arange(V), (V, V)))
    assert np.allclose(m.lm.logP, torch.log_softmax(f.W.double(), 1).numpy(), atol=1e-12)
    assert len(m.sampler.sample(5, 1)) == 5


def test_format_1_still_loads_and_serves():
    f = load_model(LEGACY_MODEL)
    assert f.metadata["format"] == LEGACY_FORMAT and f.order == 2 and f.words is None
    m = open_model(LEGACY_MODEL)
    assert m.lm.order == 2 and m.lm.S == len(f.alphabet)
    assert len(m.sampler.sample(5, 1)) == 5
    assert m.scorer.score(["maison"])[0].in_corpus is None


def test_a_trained_corpus_model_of_order_7_is_a_valid_format_3_file(tmp_path):
    """The loader's checks accept what training writes at a high order on the real corpus."""
    path = tmp_path / "kn7.safetensors"
    train_to_file(CORPUS, path, KneserNey(7), split=Split(0.1, 1))
    m = open_model(path)
    assert m.file.order == 7 and m.lm.order == 7
    assert m.file.metadata["examples"] == int(m.lm.counts.sum())
