"""The `civil-words` command line, run as a user runs it (a real process)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from service.lm.store import load_model
from tests.conftest import CODE_CIVIL, CORPUS, neural_config
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
    assert m.metadata["config"] == neural_config(steps=0, lr=1.0, reg=0.0, seed=5)


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


# `--language` on each way of training: the command and its options (quick on a small list).
LANGUAGE_RUNS = {
    "neural": ["train", "--steps", "5", "--quiet"],
    "counts": ["train", "--method", "counts", "--order", "3", "--quiet"],
    "tune": ["tune", "--orders", "2-3", "--holdout", "0.2"],
}


@pytest.mark.parametrize("run", list(LANGUAGE_RUNS))
def test_language_is_recorded_in_the_config_not_in_the_version(word_lists, tmp_path, run):
    """`--language fr` names the model's lexicon in the file's config; without it, null. It
    changes nothing else: the tensors, and so the version, are the same."""
    command, *options = LANGUAGE_RUNS[run]
    models = {}
    for language in ("fr", None):
        out = tmp_path / f"{language}.safetensors"
        chosen = ["--language", language] if language else []
        words = str(word_lists["greek-cyrillic"])
        cli(command, "--words", words, "--out", str(out), *options, *chosen, check=True)
        with safe_open(str(out), framework="pt") as f:
            assert json.loads(f.metadata()["config"])["language"] == language  # in the file
        models[language] = load_model(out)
    fr, none = models["fr"], models[None]
    assert fr.config["language"] == "fr" and none.config["language"] is None
    assert {**fr.config, "language": None} == none.config
    assert fr.version == none.version


@pytest.mark.parametrize("code", ["xx", "FR", "french"])
@pytest.mark.parametrize("command", ["train", "tune"])
def test_unknown_language_is_a_usage_error(word_lists, tmp_path, command, code):
    out = tmp_path / "m.safetensors"
    r = cli(command, "--words", str(word_lists["tiny-ab"]), "--out", str(out), "--language", code)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr
    assert f"argument --language: {code!r} is not a language of wordfreq's" in r.stderr
    valid = r.stderr.strip().split("choose from ")[1].split(", ")
    assert {"fr", "en", "de"} <= set(valid) and code not in valid
    assert not out.exists()


def test_language_is_checked_without_loading_torch_or_a_word_list():
    """The check reads wordfreq's file names only; without the option wordfreq is not even
    imported (the CLI starts fast)."""
    probe = (
        "import sys; from service.cli import build_parser\n"
        "args = build_parser().parse_args(['train', '--words', 'w', '--out', 'o'] + sys.argv[1:])\n"
        "wf = sys.modules.get('wordfreq')\n"
        "print(args.language, 'torch' in sys.modules, wf is not None,"
        " wf is not None and wf.get_frequency_list.cache_info().currsize)"
    )
    for extra, expected in (
        ([], "None False False False"),
        (["--language", "fr"], "fr False True 0"),
    ):
        r = subprocess.run(
            [sys.executable, "-c", probe, *extra], capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == expected


def test_the_library_checks_the_language_too(word_lists, tmp_path):
    from service.lm.train import Split, train_to_file, tune

    out = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="'xx' is not a language"):
        train_to_file(word_lists["tiny-ab"], out, language="xx")
    with pytest.raises(ValueError, match="'xx' is not a language"):
        tune(word_lists["tiny-ab"], out, Split(0.2), (2,), language="xx")
    assert not out.exists()


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


# --- sample under constraints, score --------------------------------------------------------


def test_sample_with_constraints_gives_the_services_words():
    from service.lm.constrained import ConstrainedSampler, Constraints
    from service.lm.lexicon import LexiconSource
    from service.lm.model import probabilities
    from tests.conftest import SHIPPED_MODEL
    from tests.reference import table_sampler

    m = load_model(SHIPPED_MODEL)
    P, logP = probabilities(m.W, m.counts)
    # novel also rejects the lexicon's words: the one the file names (--language fr).
    lexicon = LexiconSource(m.config["language"], None, m.words)
    local = ConstrainedSampler(
        table_sampler(P, m.alphabet, logP, m.counts), m.words, lexicon=lexicon
    )
    args = ["--prefix", "mor", "--min-len", "5", "--max-len", "8", "--novel", "--unique"]
    args += ["--temperature", "0.8", "--top-k", "12"]
    out = cli("sample", "--model", str(SHIPPED_MODEL), "-n", "40", "--seed", "5", *args, check=True)
    expected = local.sample(40, 5, Constraints("mor", 5, 8, True, True, 0.8, 12)).words
    assert out.stdout.splitlines() == expected
    assert all(w.startswith("mor") and 5 <= len(w) <= 8 for w in expected)


def test_max_word_len_cuts_and_max_len_conditions():
    """--max-word-len is the notebook path's cut (the server's MAX_WORD_LEN); --max-len is a
    constraint: words end by themselves, none longer."""
    from tests.conftest import SHIPPED_MODEL

    model = str(SHIPPED_MODEL)
    plain = cli("sample", "--model", model, "-n", "300", "--seed", "1", check=True)
    cut = cli("sample", "--model", model, "-n", "300", "--seed", "1", "--max-word-len", "4")
    cut_words, plain_words = cut.stdout.splitlines(), plain.stdout.splitlines()
    # Cutting changes only the words that were longer, and the stream after them.
    assert cut_words[0] == plain_words[0][:4] and max(map(len, cut_words)) == 4
    short = cli("sample", "--model", model, "-n", "300", "--seed", "1", "--max-len", "4")
    assert max(map(len, short.stdout.splitlines())) <= 4
    assert short.stdout != cut.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prefix", "xq", "--top-k", "2"], "--prefix, --top-k: no word meets"),
        (["-n", "50", "--max-len", "1", "--unique"], "--unique, -n, --max-len: only 41"),
        (["--prefix", "k"], "--prefix: 'k' (position 1) is not in the model's alphabet"),
        (["--min-len", "5", "--max-len", "3"], "--max-len: must be at least min_len (5)"),
    ],
)
def test_sample_refuses_what_the_model_cannot_meet(args, message):
    from tests.conftest import SHIPPED_MODEL

    r = cli("sample", "--model", str(SHIPPED_MODEL), *args)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_sample_novel_on_a_model_without_word_list():
    from tests.conftest import LEGACY_MODEL

    r = cli("sample", "--model", str(LEGACY_MODEL), "--novel")
    assert r.returncode == 1 and "--novel: " in r.stderr and "word list" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--temperature", "0"],
        ["--temperature", "21"],
        ["--temperature", "nan"],
        ["--top-k", "0"],
        ["--min-len", "0"],
        ["--max-len", "x"],
    ],
)
def test_bad_constraint_values_are_usage_errors(args):
    r = cli("sample", "--model", "x", *args)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr


def test_score_prints_a_line_per_word_and_json_as_the_api():
    import json
    import math

    from tests.conftest import SHIPPED_MODEL

    m = load_model(SHIPPED_MODEL)
    rows = torch.log_softmax(m.W.double(), 1)

    def logprob(word):
        ix = [0, *(m.alphabet.index(c) for c in word), 0]
        return sum(rows[a, b].item() for a, b in itertools.pairwise(ix))

    r = cli("score", "--model", str(SHIPPED_MODEL), "maison", "zoé", check=True)
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("maison\t") and lines[1].startswith("zoé\t")
    assert f"logprob {logprob('maison'):.4f}" in lines[0] and "in corpus" in lines[0]
    assert lines[1].endswith("new")

    r = cli("score", "--model", str(SHIPPED_MODEL), "--json", "été", check=True)
    (obj,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert list(obj) == [
        "word",
        "logprob",
        "symbols",
        "nll_per_symbol",
        "perplexity",
        "in_corpus",
        "in_lexicon",
        "matches",
        "old20",
        "neighbours",
        "nearest",
        "bigrams",
    ]
    # The shipped model's lexicon (wordfreq's French, --language fr): été is a real word.
    assert obj["in_lexicon"] is True and obj["matches"][0]["word"] == "été"
    assert obj["old20"] > 0 and len(obj["nearest"]) == 5
    assert obj["logprob"] == pytest.approx(logprob("été"), abs=1e-12)
    assert obj["perplexity"] == pytest.approx(math.exp(-logprob("été") / 4))
    assert [b["bigram"] for b in obj["bigrams"]] == [".é", "ét", "té", "é."]
    assert [b["context"] for b in obj["bigrams"]] == [".", "é", "t", "é"]
    assert [list(b) for b in obj["bigrams"]] == [["bigram", "context", "logprob"]] * 4


def test_score_reads_standard_input_and_names_bad_words():
    from tests.conftest import SHIPPED_MODEL

    r = subprocess.run(
        [sys.executable, "-m", "service", "score", "--model", str(SHIPPED_MODEL)],
        input="maison\nkayak\ncode\n\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert r.returncode == 1
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == ["maison", "code"]
    assert "'kayak': 'k' (position 1) is not in the model's alphabet" in r.stderr
    assert "empty word" in r.stderr and "Traceback" not in r.stderr
