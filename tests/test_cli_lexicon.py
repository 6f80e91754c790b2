"""The command line's lexicon figures (SPEC section 8), run as a user runs it (a real process):
`sample --stats/--csv/--json`, `--old20-min/--old20-max`, `--novel` against the lexicon,
`score --csv/--json`, `pseudo`, `--lexicon`.

Most runs give a small `--lexicon` file, so that building the lexicon costs nothing and the
figures can be recomputed here by brute force; the model's training words are added to it."""

from __future__ import annotations

import csv
import io
import json
import statistics
import subprocess
import sys
import unicodedata

import pytest

from tests.conftest import CORPUS, SHIPPED_MODEL

pytestmark = pytest.mark.slow

TARGETS = ["accusé", "annonces", "alors"]
# Lexicon words that are not training words (neighbours of the targets).
NEAR = ["accusée", "accusés", "annonce", "alers", "tête"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`civil-words ARGS`; stdout as text with its line ends kept (CSV ends lines with CRLF)."""
    r = subprocess.run(
        [sys.executable, "-m", "service", *args],
        input=None if stdin is None else stdin.encode(),
        capture_output=True,
        timeout=300,
    )
    r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
    return r


def ok(*args: str, stdin: str | None = None) -> str:
    r = run(*args, stdin=stdin)
    assert r.returncode == 0, r.stderr
    return r.stdout


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def old20(word: str, entries: list[str]) -> float:
    """Mean distance to the 20 closest entries other than the word, by brute force."""
    return statistics.fmean(sorted(levenshtein(word, e) for e in entries if e != word)[:20])


def folded(word: str) -> str:
    nfd = unicodedata.normalize("NFD", word.lower())
    return "".join(c for c in nfd if not unicodedata.combining(c))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small counting model trained without --language on 300 corpus words, and a lexicon
    file (with Zipf frequencies) of those words and a few more: its lexicon under --lexicon."""
    d = tmp_path_factory.mktemp("small")
    words = CORPUS.read_text(encoding="utf-8").split()[22::23][:300]
    assert set(TARGETS) <= set(words) and not set(NEAR) & set(words)
    (d / "words.txt").write_text("".join(w + "\n" for w in words), encoding="utf-8")
    listed = words + NEAR
    lexicon = d / "lexicon.txt"
    lexicon.write_text(
        "".join(f"{w}\t{2 + (i % 40) / 10:g}\n" for i, w in enumerate(listed)), encoding="utf-8"
    )
    model = d / "m.safetensors"
    ok("train", "--method", "counts", "--words", str(d / "words.txt"), "--out", str(model))
    targets = d / "targets.txt"
    targets.write_text("".join(t + "\n" for t in TARGETS), encoding="utf-8")
    return {
        "model": str(model),
        "lexicon": str(lexicon),
        "targets": str(targets),
        "words": words,
        "entries": list(dict.fromkeys(listed)),
    }


# --- reading CSV back --------------------------------------------------------------------------


def number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def flag(cell: str) -> bool | None:
    return {"true": True, "false": False, "": None}[cell]


def pairs(cell: str) -> list[tuple[str, str]]:
    return [tuple(p.rsplit(":", 1)) for p in cell.split()]


def rows(text: str) -> list[dict[str, str]]:
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def stats_from_csv(row: dict[str, str]) -> dict:
    """A `scores_csv` row as the JSON object of `/score` without its bigrams."""
    return {
        "word": row["word"],
        "logprob": float(row["logprob"]),
        "symbols": int(row["symbols"]),
        "nll_per_symbol": float(row["nll_per_symbol"]),
        "perplexity": number(row["perplexity"]),
        "in_corpus": flag(row["in_corpus"]),
        "in_lexicon": flag(row["in_lexicon"]),
        "matches": [{"word": w, "zipf": number(z)} for w, z in pairs(row["matches"])],
        "old20": number(row["old20"]),
        "neighbours": row["neighbours"].split(),
        "nearest": [{"word": w, "distance": int(d)} for w, d in pairs(row["nearest"])],
    }


def without_bigrams(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k != "bigrams"}


# --- --help stays light ----------------------------------------------------------------------


def test_help_loads_neither_torch_nor_wordfreq():
    probe = (
        "import sys\nfrom service.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('MODULES', 'torch' in sys.modules, 'wordfreq' in sys.modules)"
    )
    for argv in ([], ["sample"], ["score"], ["pseudo"]):
        r = subprocess.run(
            [sys.executable, "-c", probe, *argv, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[-1] == "MODULES False False", argv
    assert "pseudo" in run("--help").stdout
    shown = run("sample", "--help").stdout
    for option in ("--old20-min", "--old20-max", "--stats", "--csv", "--json", "--lexicon"):
        assert option in shown


# --- sample and score --------------------------------------------------------------------------


def test_score_and_sample_figures_agree_in_csv_json_and_lines(small):
    """On the shipped model with a small --lexicon: `score --csv` reads back as `score --json`;
    `sample --stats --csv`, `--json` and `--stats` give the same figures for its words."""
    from service.lm.constrained import Constraints
    from service.lm.ready import open_model

    model, lexicon = ["--model", str(SHIPPED_MODEL)], ["--lexicon", small["lexicon"]]
    sampled = ["-n", "15", "--seed", "7", "--min-len", "4"]
    words = [row["word"] for row in rows(ok("sample", *model, *sampled, "--csv"))]
    assert (
        words == open_model(SHIPPED_MODEL).constrained.sample(15, 7, Constraints(min_len=4)).words
    )
    chosen = ["tete", "accusées", "maison", *words]  # tete is taken for tête, accusées not
    scored = ok("score", *model, *lexicon, "--json", *chosen).splitlines()
    scored = [json.loads(line) for line in scored]
    assert [s["word"] for s in scored] == chosen
    by_word = {s["word"]: without_bigrams(s) for s in scored}
    tete, accusees = by_word["tete"], by_word["accusées"]
    assert tete["in_lexicon"] is True and [m["word"] for m in tete["matches"]] == ["tête"]
    assert tete["matches"][0]["zipf"] is not None
    assert accusees["in_lexicon"] is False and {"accusée", "accusés"} <= set(accusees["neighbours"])

    text = ok("score", *model, *lexicon, "--csv", *chosen)
    assert text.startswith("word,symbols,logprob,nll_per_symbol,perplexity,in_corpus,")
    assert [stats_from_csv(row) for row in rows(text)] == [by_word[w] for w in chosen]

    expected = [by_word[w] for w in words]
    stats_csv = ok("sample", *model, *sampled, *lexicon, "--stats", "--csv")
    assert [stats_from_csv(row) for row in rows(stats_csv)] == expected
    lines = ok("sample", *model, *sampled, *lexicon, "--json").splitlines()
    assert [json.loads(line) for line in lines] == expected

    plain = ok("sample", *model, *sampled, *lexicon, "--stats").splitlines()
    assert len(plain) == len(words)
    for line, s in zip(plain, expected, strict=True):
        word, nll, lexical, old, neighbours, nearest = line.split("\t")
        assert word == s["word"] and nll == f"nll/symbol {s['nll_per_symbol']:.4f}"
        assert lexical == ("in lexicon" if s["in_lexicon"] else "not in lexicon")
        assert old == f"old20 {s['old20']:.2f}"
        assert neighbours == f"neighbours {len(s['neighbours'])}"
        assert nearest == "nearest " + " ".join(
            f"{n['word']}:{n['distance']}" for n in s["nearest"]
        )


def test_plain_sample_and_score_build_no_lexicon():
    """Plain lines (and --novel-free samples) never build the shipped model's wordfreq lexicon:
    they stay fast. Its figures (--json) do."""
    probe = (
        "import sys\nfrom service.cli import main\n"
        "for argv in (['sample', '-n', '3'], ['score', 'maison'], ['score', '--json', 'mor']):\n"
        "    main([argv[0], '--model', sys.argv[1], *argv[1:]])\n"
        "    print('WORDFREQ', 'wordfreq' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe, str(SHIPPED_MODEL)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    flags = [line for line in r.stdout.splitlines() if line.startswith("WORDFREQ")]
    assert flags == ["WORDFREQ False", "WORDFREQ False", "WORDFREQ True"]


def test_sample_novel_rejects_lexicon_words():
    """The shipped model's plain words hold real French words; with --novel none is in the
    lexicon (wordfreq's French and the corpus words, accent-folded)."""
    from service.lm.lexicon import load_lexicon
    from service.lm.ready import open_model
    from service.lm.store import load_model

    novel = ok("sample", "--model", str(SHIPPED_MODEL), "-n", "200", "--seed", "1", "--novel")
    novel = novel.splitlines()
    assert len(novel) == 200
    plain = open_model(SHIPPED_MODEL).sampler.sample(200, 1)  # what `sample` prints
    f = load_model(SHIPPED_MODEL)
    lexicon = load_lexicon(None, sorted({*f.words, *(f.heldout or ())}))
    assert lexicon.contains(plain).sum() > 20  # real words come without --novel
    assert not lexicon.contains(novel).any()


def test_old20_range_holds_by_brute_force(small):
    args = ["sample", "--model", small["model"], "--lexicon", small["lexicon"], "-n", "20"]
    args += ["--seed", "4", "--old20-min", "3.5", "--old20-max", "4", "--novel", "--json"]
    got = [json.loads(line) for line in ok(*args).splitlines()]
    assert len(got) == 20
    for s in got:
        assert s["old20"] == pytest.approx(old20(s["word"], small["entries"]), abs=1e-12)
        assert 3.5 <= s["old20"] <= 4 and s["in_lexicon"] is False and s["in_corpus"] is False
    # Without the range, words fall outside it: the range did the choosing.
    args = [*args[: args.index("--old20-min")], "--json"]
    assert any(not 3.5 <= json.loads(line)["old20"] <= 4 for line in ok(*args).splitlines())


# --- pseudo ----------------------------------------------------------------------------------

PSEUDO = ["--per-target", "4", "--seed", "3"]
UNMATCHED = "ab€"  # '€' is not in the small model's alphabet
GIVEN = "accusé\n\n  annonces \nalors\nab€\n"  # blank lines and spaces around words skipped


@pytest.fixture(scope="module")
def pseudo(small, tmp_path_factory):
    """`pseudo` on the targets and one it cannot match: --json and the table reading them from
    standard input, --csv from a file."""
    call = ["pseudo", "--model", small["model"], "--lexicon", small["lexicon"], *PSEUDO]
    given = tmp_path_factory.mktemp("pseudo") / "targets.txt"
    given.write_text(GIVEN, encoding="utf-8")
    return {
        "json": json.loads(ok(*call, "--targets", "-", "--json", stdin=GIVEN)),
        "csv": ok(*call, "--targets", str(given), "--csv"),
        "table": ok(*call, "--targets", "-", stdin=GIVEN).splitlines(),
    }


def test_pseudo_matches_each_target_within_the_tolerances(small, pseudo):
    """Per target, 4 words of its length, none a target, a training or lexicon word, all
    distinct, their OLD20 (recomputed by brute force) and NLL per symbol within 0.3 of the
    target's; the summary from those figures."""
    from service.lm.ready import open_model

    answer = pseudo["json"]
    assert answer["seed"] == 3 and [item["target"]["word"] for item in answer["items"]] == TARGETS
    assert answer["unmatched"] == [
        {"target": UNMATCHED, "reason": "'€' (position 3) is not in the model's alphabet"}
    ]
    entries = small["entries"]
    everything = [w for item in answer["items"] for w in item["pseudowords"]]
    scores = open_model(small["model"]).scorer.score(TARGETS + [p["word"] for p in everything])
    nll = {s.word: s.nll_per_symbol for s in scores}
    forbidden = {folded(w) for w in entries + small["words"]}
    for item in answer["items"]:
        t = item["target"]
        assert t["length"] == len(t["word"]) and t["in_lexicon"] is True and t["zipf"] is not None
        assert t["old20"] == pytest.approx(old20(t["word"], entries), abs=1e-12)
        assert t["nll_per_symbol"] == pytest.approx(nll[t["word"]], abs=1e-12)
        assert len(item["pseudowords"]) == 4
        for p in item["pseudowords"]:
            assert len(p["word"]) == p["length"] == t["length"]
            assert folded(p["word"]) not in forbidden
            assert p["old20"] == pytest.approx(old20(p["word"], entries), abs=1e-12)
            assert abs(p["old20"] - t["old20"]) <= 0.3 + 1e-9
            assert p["nll_per_symbol"] == pytest.approx(nll[p["word"]], abs=1e-12)
            assert abs(p["nll_per_symbol"] - t["nll_per_symbol"]) <= 0.3 + 1e-9
            near = [e for e in entries if levenshtein(p["word"], e) == 1]
            assert sorted(p["neighbours"]) == sorted(near)
    assert {"accusée", "accusés"} <= set(answer["items"][0]["target"]["neighbours"])
    words = [p["word"] for p in everything]
    assert len(set(words)) == len(words) and not set(words) & set(TARGETS)
    summary = answer["summary"]["pseudowords"]
    assert summary["count"] == 12
    assert summary["length"]["mean"] == statistics.fmean(float(len(w)) for w in words)
    assert summary["old20"]["sd"] == pytest.approx(statistics.stdev(p["old20"] for p in everything))


def test_pseudo_csv_holds_the_jsons_values(pseudo):
    expected = []
    for i, item in enumerate(pseudo["json"]["items"], 1):
        t = item["target"]
        for role, f in [("target", t)] + [("pseudoword", p) for p in item["pseudowords"]]:
            figures = [f["nll_per_symbol"], f["old20"], f["neighbours"]]
            lexical = [f.get("in_lexicon"), f.get("zipf"), ""]
            expected.append(
                [str(i), role, f["word"], t["word"], str(f["length"]), *figures, *lexical]
            )
    reason = pseudo["json"]["unmatched"][0]["reason"]
    expected.append(["", "unmatched", "", UNMATCHED, "", None, None, [], None, None, reason])
    got = []
    for r in rows(pseudo["csv"]):
        figures = [number(r["nll_per_symbol"]), number(r["old20"]), r["neighbours"].split()]
        lexical = [flag(r["in_lexicon"]), number(r["zipf"]), r["reason"]]
        got.append([r["item"], r["role"], r["word"], r["target"], r["length"], *figures, *lexical])
    assert got == expected


def test_pseudo_answers_as_the_http_api(small, pseudo):
    """`pseudo --json` and `--csv` are POST /pseudowords' answers; the table shows the same
    figures."""
    from service import create_app
    from service.settings import Settings

    app = create_app(Settings(model_path=small["model"], lexicon_path=small["lexicon"]))
    client = app.test_client()
    body = {"targets": [*TARGETS, UNMATCHED], "per_target": 4, "seed": 3}
    assert pseudo["json"] == client.post("/pseudowords", json=body).get_json()
    http_csv = client.post("/pseudowords", json=body, headers={"Accept": "text/csv"})
    assert pseudo["csv"] == http_csv.get_data(as_text=True)

    lines = pseudo["table"]
    for item in pseudo["json"]["items"]:
        t = item["target"]
        (line,) = [x for x in lines if x.split()[:1] == [t["word"]]]
        shown = [str(t["length"]), f"{t['old20']:.2f}", f"{t['nll_per_symbol']:.3f}"]
        assert line.split()[1:5] == [*shown, str(len(t["neighbours"]))]
        for p in item["pseudowords"]:
            (line,) = [x for x in lines if x.startswith(f"  {p['word']} ")]
            assert line.split()[1:4] == [
                str(p["length"]),
                f"{p['old20']:.2f}",
                f"{p['nll_per_symbol']:.3f}",
            ]
    assert "  ab€: '€' (position 3) is not in the model's alphabet" in lines
    (summary,) = [x for x in lines if x.startswith("pseudowords ")]
    assert summary.split()[1] == "12"


BAD_PSEUDO = [
    ("missing", ["--targets", "MISSING"], 1, "--targets: "),
    ("empty", ["--targets", "EMPTY"], 1, "--targets: "),
    ("too-many", ["--targets", "MANY"], 1, "501 target words, more than 500"),
    ("not-utf8", ["--targets", "LATIN1"], 1, "line 2: not UTF-8"),
    ("per-target-0", ["--per-target", "0"], 2, "argument --per-target: 0 is out of range"),
    ("per-target-21", ["--per-target", "21"], 2, "argument --per-target: 21 is out of range"),
    ("old20-tol-neg", ["--old20-tolerance", "-1"], 2, "argument --old20-tolerance: -1 is out"),
    ("nll-tol-nan", ["--nll-tolerance", "nan"], 2, "argument --nll-tolerance: nan is out"),
    ("nll-tol-11", ["--nll-tolerance", "11"], 2, "argument --nll-tolerance: 11 is out"),
    ("csv-and-json", ["--csv", "--json"], 2, "argument --json: not allowed with argument --csv"),
    ("no-lexicon", [], 1, "--model: the model has no lexicon"),
    ("bad-lexicon", ["--lexicon", "BADLEXICON"], 1, "line 2: the Zipf column must be on every"),
]


@pytest.mark.parametrize(
    ("name", "args", "code", "message"), BAD_PSEUDO, ids=[b[0] for b in BAD_PSEUDO]
)
def test_pseudo_refuses_bad_input(small, tmp_path, name, args, code, message):
    files = {
        "MISSING": tmp_path / "missing.txt",
        "EMPTY": tmp_path / "empty.txt",
        "MANY": tmp_path / "many.txt",
        "LATIN1": tmp_path / "latin1.txt",
        "BADLEXICON": tmp_path / "lexicon.txt",
    }
    files["EMPTY"].write_text("\n  \n")
    files["MANY"].write_text("alors\n" * 501)
    files["LATIN1"].write_bytes("alors\naccusé\n".encode("latin-1"))
    files["BADLEXICON"].write_text("alors\t4.5\naccusé\n")
    args = [str(files.get(a, a)) for a in args]
    if "--targets" not in args:
        args += ["--targets", small["targets"]]
    if "--lexicon" not in args and name != "no-lexicon":  # the small model has none of its own
        args += ["--lexicon", small["lexicon"]]
    r = run("pseudo", "--model", small["model"], *args)
    assert r.returncode == code and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    if code == 2:
        assert "usage: civil-words pseudo" in r.stderr
    else:
        assert r.stderr.startswith("civil-words: error: ")
    if name in ("missing", "bad-lexicon"):
        assert str(tmp_path) in r.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--old20-min", "3", "--old20-max", "2"], 1, "--old20-max: must be at least old20_min"),
        (["--old20-min", "-1"], 2, "argument --old20-min: -1 is out of range (0 to 255)"),
        (["--old20-max", "300"], 2, "argument --old20-max: 300 is out of range (0 to 255)"),
        (["--stats", "--csv", "--json"], 2, "argument --json: not allowed with argument --csv"),
    ],
)
def test_sample_refuses_bad_old20_ranges(small, args, code, message):
    r = run("sample", "--model", small["model"], "--lexicon", small["lexicon"], *args)
    assert r.returncode == code and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_lexicon_figures_need_a_lexicon_and_a_good_file(small, tmp_path):
    r = run("sample", "--model", small["model"], "--old20-min", "1")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "--old20-min: the model has no lexicon" in r.stderr and "--lexicon FILE" in r.stderr
    # A --lexicon file is read at once: named even where the lines do not need it.
    bad = tmp_path / "bad.txt"
    bad.write_text("alors\n\tx\n")
    r = run("score", "--model", small["model"], "--lexicon", str(bad), "alors")
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.startswith(f"civil-words: error: {bad}, line 2: "), r.stderr
    r = run("sample", "--model", small["model"], "--lexicon", str(tmp_path / "no.txt"), "--stats")
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.startswith(
        f"civil-words: error: {tmp_path / 'no.txt'}: cannot read the lexicon"
    )
