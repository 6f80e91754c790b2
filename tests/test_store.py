"""The model file: round trip, and one refusal per kind of bad file."""

from __future__ import annotations

import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from service.lm.corpus import read_words
from service.lm.methods import KneserNey, Neural
from service.lm.model import TrainConfig
from service.lm.store import ModelFileError, content_version, encode_words, load_model
from service.lm.train import train_to_file
from tests.conftest import LEGACY_MODEL, neural_config


@pytest.fixture(scope="module")
def good(tmp_path_factory, word_lists):
    path = tmp_path_factory.mktemp("models") / "good.safetensors"
    train_to_file(read_words(word_lists["greek-cyrillic"]), path, Neural(TrainConfig(steps=20)))
    return path


def _tensors_and_meta(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k).clone() for k in f.keys()}, dict(f.metadata())


def _rewrite(src, dst, mutate):
    tensors, meta = _tensors_and_meta(src)
    mutate(tensors, meta)
    save_file(tensors, str(dst), metadata=meta)
    return dst


def test_round_trip(good, word_lists):
    m = load_model(good)
    assert m.W.dtype == torch.float32 and m.counts.dtype == torch.int64
    assert m.W.shape == m.counts.shape == (len(m.alphabet), len(m.alphabet))
    assert m.alphabet[0] == "." and list(m.alphabet[1:]) == sorted(m.alphabet[1:])
    assert m.words == tuple(sorted(set(read_words(word_lists["greek-cyrillic"]).words)))
    assert m.version == content_version(m.W, m.counts, m.alphabet, {"words": encode_words(m.words)})
    meta = m.metadata
    assert meta["config"] == neural_config(steps=20)
    assert meta["examples"] == int(m.counts.sum())
    assert len(meta["corpus_sha256"]) == 64 and meta["corpus_bytes"] > 0
    assert meta["loss_curve"][0][0] == 0 and meta["loss_curve"][-1][0] == 19
    assert {"created", "torch_version", "loss", "nll", "loss_first", "loss_last"} <= set(meta)


def _set_meta(key, value):
    def mutate(tensors, meta):
        meta[key] = value

    return mutate


def _drop_meta(key):
    def mutate(tensors, meta):
        del meta[key]

    return mutate


def _tensor(key, fn):
    def mutate(tensors, meta):
        tensors[key] = fn(tensors[key])

    return mutate


def _words(data: bytes):
    """Replace the stored word list (and the version, so that only the list is at fault)."""

    def mutate(tensors, meta):
        tensors["words"] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        alphabet = tuple(json.loads(meta["alphabet"]))
        word_lists = {"words": tensors["words"]}
        meta["version"] = content_version(tensors["W"], tensors["counts"], alphabet, word_lists)

    return mutate


def _config(**changes):
    def mutate(tensors, meta):
        meta["config"] = json.dumps({**json.loads(meta["config"]), **changes})

    return mutate


def _nan(W):
    W = W.clone()
    W[1, 2] = float("nan")
    return W


def _inf(W):
    W = W.clone()
    W[0, 0] = float("inf")
    return W


def _extra(tensors, meta):
    tensors["extra"] = torch.zeros(2)


def _altered(tensors, meta):
    tensors["W"] = tensors["W"] + 0.5


def _alphabet_short(tensors, meta):
    meta["alphabet"] = json.dumps(json.loads(meta["alphabet"])[:-1], ensure_ascii=False)


def _alphabet_unsorted(tensors, meta):
    a = json.loads(meta["alphabet"])
    a[1], a[2] = a[2], a[1]
    meta["alphabet"] = json.dumps(a, ensure_ascii=False)


def _alphabet_no_marker(tensors, meta):
    a = json.loads(meta["alphabet"])
    a[0] = "!"
    meta["alphabet"] = json.dumps(sorted(a), ensure_ascii=False)


REWRITES = [
    ("wrong-shape", _tensor("W", lambda W: W[:, :-1].contiguous()), "wrong shape"),
    ("wrong-counts-shape", _tensor("counts", lambda c: c[:-1].contiguous()), "wrong shape"),
    ("wrong-dtype-W", _tensor("W", lambda W: W.double()), "wrong dtype"),
    ("wrong-dtype-counts", _tensor("counts", lambda c: c.int()), "wrong dtype"),
    ("nan-in-W", _tensor("W", _nan), "NaN or infinite"),
    ("inf-in-W", _tensor("W", _inf), "NaN or infinite"),
    ("negative-counts", _tensor("counts", lambda c: -c), "negative"),
    ("extra-tensor", _extra, "expected tensors W, counts, words"),
    ("missing-counts", lambda t, m: t.pop("counts"), "expected tensors W, counts, words"),
    ("missing-words", lambda t, m: t.pop("words"), "expected tensors W, counts, words"),
    ("words-not-bytes", _tensor("words", lambda w: w.long()), "not a 1-D uint8"),
    ("words-not-utf8", _words(b"\xff\xfe\n"), "not valid UTF-8"),
    ("words-unsorted", _words("βα\nαβ\n".encode()), "not sorted and distinct"),
    ("words-repeated", _words("αβ\nαβ\n".encode()), "not sorted and distinct"),
    ("words-empty-line", _words("\nαβ\n".encode()), "empty word"),
    ("words-with-marker", _words("α.β\n".encode()), "'.'"),
    ("words-no-final-newline", _words("αβ".encode()), "newline"),
    ("words-not-the-alphabet", _words("αβ\n".encode()), "symbols are not the alphabet"),
    ("legacy-with-words", _set_meta("format", "civil-words/1"), "expected tensors W, counts"),
    ("unknown-method", _config(method="bayes"), "unknown method"),
    ("counts-without-smoothing", _config(method="counts"), "bad values for the counts"),
    ("negative-holdout", _config(holdout=-0.5), "bad values"),
    ("holdout-without-figures", _config(holdout=0.2), "does not match the config's hold-out"),
    ("language-not-a-code", _config(language="French!"), "language is not null or a language"),
    ("language-not-a-string", _config(language=7), "language is not null or a language"),
    ("language-empty", _config(language=""), "language is not null or a language"),
    ("altered-W", _altered, "version does not match"),
    ("alphabet-shorter-than-W", _alphabet_short, "wrong shape"),
    ("alphabet-unsorted", _alphabet_unsorted, "sorted, distinct"),
    ("alphabet-without-marker", _alphabet_no_marker, "'.' marker"),
    ("alphabet-not-json-list", _set_meta("alphabet", "abc"), "not a list"),
    ("missing-version", _drop_meta("version"), "missing version"),
    ("missing-alphabet", _drop_meta("alphabet"), "missing alphabet"),
    ("unknown-format", _set_meta("format", "other/9"), "unknown format"),
    ("loss-not-a-number", _set_meta("loss", "NaN"), "not a finite number"),
]


@pytest.mark.parametrize(("name", "mutate", "reason"), REWRITES, ids=[r[0] for r in REWRITES])
def test_rejects_inconsistent_file(good, tmp_path, name, mutate, reason):
    bad = _rewrite(good, tmp_path / f"{name}.safetensors", mutate)
    with pytest.raises(ModelFileError) as e:
        load_model(bad)
    assert str(bad) in str(e.value) and reason in str(e.value)


def _truncated(good, p):
    p.write_bytes(good.read_bytes()[:-100])


def _truncated_header(good, p):
    p.write_bytes(good.read_bytes()[:50])


def _short(good, p):
    p.write_bytes(b"\x01\x02")


def _text(good, p):
    p.write_text("this is not a model\n")


def _pickle(good, p):
    p.write_bytes(pickle.dumps({"W": [[0.0]], "alphabet": ["."]}))


def _torch_save(good, p):
    torch.save({"W": torch.zeros(3, 3)}, p)


def _huge_header(good, p):
    p.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")


def _bad_json_header(good, p):
    body = b"{not json"
    p.write_bytes(struct.pack("<Q", len(body)) + body)


def _empty(good, p):
    p.write_bytes(b"")


def _directory(good, p):
    p.mkdir()


BROKEN = [
    ("truncated-data", _truncated, "safetensors"),
    ("truncated-header", _truncated_header, "truncated"),
    ("two-bytes", _short, "not a safetensors file"),
    ("empty", _empty, "not a safetensors file"),
    ("text", _text, "header size"),
    ("pickle", _pickle, "not a"),
    ("torch-save-zip", _torch_save, "not a"),
    ("huge-header", _huge_header, "over the"),
    ("header-not-json", _bad_json_header, "not a valid safetensors file"),
    ("directory", _directory, "not a regular file"),
]


@pytest.mark.parametrize(("name", "make", "reason"), BROKEN, ids=[b[0] for b in BROKEN])
def test_rejects_broken_file(good, tmp_path, name, make, reason):
    bad = tmp_path / f"{name}.safetensors"
    make(good, bad)
    with pytest.raises(ModelFileError) as e:
        load_model(bad)
    assert str(bad) in str(e.value) and reason in str(e.value)


def test_rejects_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "nope.safetensors")


def test_pickle_is_never_executed(tmp_path):
    """A pickle whose loading would run code is refused without running it."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "exploit.safetensors"
    bad.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ModelFileError):
        load_model(bad)
    assert not marker.exists()


def test_loads_a_format_1_file():
    """A file written before word lists were stored (the model shipped until then) still loads:
    a neural model with no word list, its config in today's shape."""
    m = load_model(LEGACY_MODEL)
    assert m.words is None and m.heldout is None and m.method == "neural"
    assert m.version == "22374489e7b2" == content_version(m.W, m.counts, m.alphabet)
    assert m.config == neural_config(split_seed=None)


def _drop_language(tensors, meta):
    config = json.loads(meta["config"])
    del config["language"]
    meta["config"] = json.dumps(config)


@pytest.mark.parametrize("kind", ["neural", "kneser-ney-3"])
def test_loads_a_file_written_before_the_language_option(good, word_lists, tmp_path, kind):
    """A file whose config has no `language` (all files written before `train --language`, of
    format 2 or 3) still loads, with no lexicon language; a file written now states it."""
    src = good
    if kind != "neural":
        src = tmp_path / "kn3.safetensors"
        train_to_file(read_words(word_lists["greek-cyrillic"]), src, KneserNey(3))
    _, meta = _tensors_and_meta(src)
    assert json.loads(meta["config"])["language"] is None  # written, as null
    old = _rewrite(src, tmp_path / "old.safetensors", _drop_language)
    assert "language" not in json.loads(_tensors_and_meta(old)[1]["config"])
    m = load_model(old)
    assert m.config["language"] is None
    assert m.config == load_model(src).config and m.version == load_model(src).version
