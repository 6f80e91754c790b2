"""Neighbourhood figures against the whole default lexicon: ours vs the brute-force rapidfuzz scan.

1. OLD20, neighbours and the 5 nearest for 1,000 words sampled from the shipped model
   (`open_model(MODEL).sampler.sample(1000, 1)`), each distinct word searched once
   (`Lexicon.figures`), one core, against the scan that anyone would write:
   `rapidfuzz.process.extract(word, entries, scorer=Levenshtein.distance, limit=21)`, timed on
   50 of the words and counted per word. The two are timed in turns (a slice of ours, a slice of
   the scan), so that the machine's load weighs on both alike. Exact: on those 50 words, OLD20
   and the 5 nearest from the scan (ties in list order, as ours) and the neighbours from a full
   rapidfuzz row must equal ours, or the run fails.
2. Loading the lexicon (wordfreq's French list; `service.lm.lexicon` and wordfreq imported in
   the time) in a fresh interpreter: wall time and RSS growth, the median of 3 loads.

--smoke: 60 words, 6 scanned, one load; nothing is judged.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/...`

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist, extract

from bench.common import (
    MODEL,
    ROOT,
    ExactnessError,
    Result,
    Target,
    exact_main,
    seconds,
)
from service.lm.lexicon import OLD_N, Lexicon, normalize

WORDS, SMOKE_WORDS = 1000, 60
SCANNED, SMOKE_SCANNED = 50, 6
TURNS = 10  # slices of each side, timed in alternation
LOADS, SMOKE_LOADS = 3, 1
SEED = 1

SPEED = Target(must=10, aim=50)
LOAD = Target(must=2.0, aim=1.0, higher=False, unit=" s")
RSS = Target(must=80, aim=50, higher=False, unit=" MB")

LOAD_CODE = """
import json, os, time
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
import numpy  # the service has it already
r0, t0 = rss(), time.perf_counter()
from service.lm.lexicon import Lexicon
lexicon = Lexicon.from_wordfreq()
t1, r1 = time.perf_counter(), rss()
print(json.dumps({"seconds": t1 - t0, "rss": (r1 - r0) / 2**20, "size": len(lexicon),
                  "source": lexicon.source}))
"""


def sample_words(n: int) -> list[str]:
    from service.lm.ready import open_model

    return open_model(str(MODEL)).sampler.sample(n, SEED)


def scan(word: str, entries: list[str]):
    """The brute force: the 21 closest entries, ties in list order."""
    return extract(word, entries, scorer=Levenshtein.distance, limit=OLD_N + 1)


def scan_figures(word: str, entries: list[str], found) -> tuple[float, list, list[str]]:
    """OLD20 and the 5 nearest from the scan's answer; the neighbours from a full row."""
    q = normalize(word)
    others = [(e, int(d)) for e, d, _ in found if e != q][:OLD_N]
    old20 = sum(d for _, d in others) / len(others)
    row = cdist([q], entries, scorer=Levenshtein.distance, dtype=np.int32, workers=1)[0]
    neighbours = [entries[i] for i in np.flatnonzero(row == 1).tolist()]
    return old20, others[:5], neighbours


def check(word: str, ours, theirs) -> None:
    old20, nearest, neighbours = theirs
    if not math.isclose(ours.old20, old20):
        raise ExactnessError(f"{word!r}: OLD20 {ours.old20} here, {old20} by the scan")
    if list(ours.nearest) != nearest:
        raise ExactnessError(f"{word!r}: nearest {ours.nearest} here, {nearest} by the scan")
    if list(ours.neighbours) != neighbours:
        raise ExactnessError(f"{word!r}: {len(ours.neighbours)} neighbours, not {len(neighbours)}")


def loads(times: int) -> list[dict]:
    out = []
    for _ in range(times):
        r = subprocess.run(
            [sys.executable, "-c", LOAD_CODE], cwd=ROOT, capture_output=True, text=True, check=True
        )
        out.append(json.loads(r.stdout))
    return out


def run(smoke: bool = False) -> list[Result]:
    n, scanned = (SMOKE_WORDS, SMOKE_SCANNED) if smoke else (WORDS, SCANNED)
    sampled = sample_words(n)
    words = list(dict.fromkeys(normalize(w) for w in sampled))  # each searched once
    lexicon = Lexicon.from_wordfreq()
    entries = list(lexicon)
    checked = random.Random(SEED).sample(words, min(scanned, len(words)))

    # In turns: a slice of ours, then a slice of the scan.
    ours_time = scan_time = 0.0
    got = {}
    found = {}
    for i in range(TURNS):
        part = words[i::TURNS]
        start = time.perf_counter()
        got.update(zip(part, lexicon.figures(part), strict=True))
        ours_time += time.perf_counter() - start
        for w in checked[i::TURNS]:
            start = time.perf_counter()
            found[w] = scan(w, entries)
            scan_time += time.perf_counter() - start
    for w in checked:
        check(w, got[w], scan_figures(w, entries, found[w]))

    per_word = ours_time / len(words)
    scan_per_word = scan_time / len(checked)
    work = statistics.mean(g.work for g in got.values())
    old20 = statistics.median(g.old20 for g in got.values())
    load = loads(SMOKE_LOADS if smoke else LOADS)
    load_s = statistics.median(x["seconds"] for x in load)
    load_rss = statistics.median(x["rss"] for x in load)
    return [
        Result(
            f"OLD20 + neighbours + nearest, {len(sampled)} sampled words ({len(words)} distinct)",
            f"{seconds(per_word)}/word",
            f"{seconds(scan_per_word)}/word ({len(checked)} words)",
            scan_per_word / per_word,
            SPEED,
            judged=not smoke,
            note=(
                f"{len(entries):,} entries; ours measures {work:.0f} of them a word on average "
                f"(exact distances); median OLD20 of the words {old20:.2f}; the scan's figures "
                f"equal ours on its {len(checked)} words"
            ),
        ),
        Result(
            "lexicon load (fresh interpreter, wordfreq imported)",
            seconds(load_s),
            "-",
            load_s,
            LOAD,
            judged=not smoke,
            note=f"{load[0]['source']}, {load[0]['size']:,} entries",
        ),
        Result(
            "lexicon RSS growth",
            f"{load_rss:.0f} MB",
            "-",
            load_rss,
            RSS,
            judged=not smoke,
        ),
    ]


def main() -> int:
    return exact_main(__doc__, run, "neighbourhood figures: ours vs the rapidfuzz scan")


if __name__ == "__main__":
    sys.exit(main())
