"""The `civil-words` command line, run as a user runs it (a real process)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from service.lm.store import load_model
from tests.conftest import CODE_CIVIL, CORPUS
from tests.reference import run_notebook


def cli(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_train_then_sample_gives_notebook_words(word_lists, tmp_path):
    model = tmp_path / "m.safetensors"
    r = cli(
        "train", "--words", str(word_lists["cjk-emoji-symbols"]), "--out", str(model), check=True
    )
    ref = run_notebook(word_lists["cjk-emoji-symbols"])
    summary = r.stdout.strip()
    assert f"{ref.examples} examples" in summary and "symbols" in summary and " s" in summary
    assert f"{ref.losses[0]:.4f} -> {ref.losses[-1]:.4f}" in summary
    assert "training" in r.stderr  # the progress bar
    m = load_model(model)
    assert (m.W - ref.W).abs().max().item() <= 1e-4
    for seed in (3, 2147483647):
        out = cli("sample", "--model", str(model), "-n", "25", "--seed", str(seed), check=True)
        assert out.stdout.splitlines() == ref.sample(25, seed)


def test_train_options_and_zero_steps(word_lists, tmp_path):
    model = tmp_path / "m.safetensors"
    cli(
        "train",
        "--words",
        str(word_lists["tiny-ab"]),
        "--out",
        str(model),
        "--steps",
        "0",
        "--lr",
        "1",
        "--reg",
        "0",
        "--seed",
        "5",
        "--quiet",
        check=True,
    )
    m = load_model(model)
    assert torch.equal(m.W, torch.randn((3, 3), generator=torch.Generator().manual_seed(5)))
    assert m.metadata["config"] == {
        "method": "neural",
        "steps": 0,
        "lr": 1.0,
        "reg": 0.0,
        "seed": 5,
        "smoothing": None,
        "holdout": 0.0,
        "split_seed": 2147483647,
    }


def test_corpus_rebuilds_the_word_list_byte_for_byte():
    r = subprocess.run(
        [sys.executable, "-m", "service", "corpus", str(CODE_CIVIL)],
        capture_output=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == CORPUS.read_bytes()


BAD_WORD_LISTS = [
    ("missing", None, "no such file"),
    ("empty", b"", "empty"),
    ("not-utf8", b"abc\nd\xe9f\n", "line 2: not valid UTF-8"),
    ("space", b"un\ndeux mots\n", "line 2"),
    ("tab", b"un\ndeux\ttrois\n", "whitespace"),
    ("marker", b"un\nfin.\n", "line 2: 'fin.' holds '.'"),
    ("blank-line", b"un\n\ndeux\n", "line 2: empty line"),
    ("control", b"un\nde\x07ux\n", "control character"),
]


@pytest.mark.parametrize(
    ("name", "content", "message"), BAD_WORD_LISTS, ids=[b[0] for b in BAD_WORD_LISTS]
)
def test_train_refuses_bad_word_list(tmp_path, name, content, message):
    words = tmp_path / f"{name}.txt"
    if content is not None:
        words.write_bytes(content)
    out = tmp_path / "m.safetensors"
    r = cli("train", "--words", str(words), "--out", str(out))
    assert r.returncode == 1
    assert str(words) in r.stderr and message in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--words", "x", "--out", "y", "--steps", "-1"],
        ["train", "--words", "x", "--out", "y", "--lr", "nan"],
        ["train", "--words", "x", "--out", "y", "--seed", str(2**63)],
        ["sample", "--model", "x", "-n", "0"],
        ["sample", "--model", "x", "--seed", "abc"],
        ["train", "--words", "x"],
    ],
)
def test_bad_arguments_are_usage_errors(args):
    r = cli(*args)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr


def test_sample_and_check_refuse_bad_model(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_text("nope")
    for args in (["sample", "--model", str(bad)], ["check", "--model", str(bad)]):
        r = cli(*args)
        assert r.returncode == 1 and str(bad) in r.stderr and "Traceback" not in r.stderr


def test_console_script_is_installed():
    import shutil

    exe = shutil.which("civil-words", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the civil-words console script is not installed beside this Python"
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "train" in r.stdout and "serve" in r.stdout


def test_train_reports_a_chaotic_descent_on_a_large_list(tmp_path):
    """The corpus twice over (600 x 131,450 x 41 = 3.2e9, over the fallback budget) with a step
    too large (lr 200): the float32 and float64 descents part, the notebook's loop (minutes
    here, hours on larger lists) is not run, and the float64 W is written with a warning."""
    words = tmp_path / "twice.txt"
    words.write_bytes(CORPUS.read_bytes() * 2)
    model = tmp_path / "m.safetensors"
    r = cli("train", "--words", str(words), "--out", str(model), "--lr", "200", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "civil-words: warning: the float32 and float64 descents part by" in r.stderr
    descent = load_model(model).metadata["descent"]
    assert descent["path"] == "float64 descent" and descent["float32_gap"] > 1e-5
    assert descent["warning"] in r.stderr
