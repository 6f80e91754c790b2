"""The benchmarks run in smoke mode, so that they cannot rot (their timings are not judged)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_benchmarks_smoke_run():
    r = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = ("train 600 steps", "GET /sample?n=", "throughput", "PSS", "notebook", "peak RSS")
    for row in (
        *rows,
        "words, wall",
        "--method counts",
        "min_len=8&max_len=8&novel=true",
        "POST /score",
        "words (server time, no lexicon)",
        "with the lexicon figures, cold",
        "order 5 (KN) vs bigram",
        "novel=true, order 5 vs bigram",
        "train order 5 (KN)",
        "memory, shipped models",
        "civil-words --help",
        "OLD20 + neighbours + nearest",
        "novel=true with the lexicon, n=",
        "novel=true with the lexicon, GET /sample",
        "median OLD20, novel words",
        "start-up with the lexicon",
        "POST /pseudowords",
        "PSS with the lexicon",
    ):
        assert row in r.stdout, r.stdout
