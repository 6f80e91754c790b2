"""The command line's start: `civil-words --help`, whole process, against Python alone.

Issue 18 wants the help (and every argument error) to answer at once: at most 0.3 s, without
importing torch. Wall time and peak RSS of `civil-words --help` as a user runs it, against
`python -c pass` (the interpreter's own start, the floor), interleaved; and one more run with
`-X importtime` to tell whether torch was imported. The target is reported, not asserted.

--smoke: the `-X importtime` run alone is timed, and `python -c pass` once.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/...`

from bench.common import (
    Measured,
    Result,
    Target,
    civil_words,
    exact_main,
    measure,
    median,
    seconds,
)

HELP = Target(0.3, 0.3, higher=False, unit=" s")  # issue 18


def imports_torch(cmd: list[str]) -> tuple[bool, Measured]:
    """Whether `cmd` (a Python script and its arguments) imports torch, and that run."""
    m = measure([sys.executable, "-X", "importtime", *cmd])
    return re.search(r"^import time:.*\|\s*torch$", m.stderr, re.MULTILINE) is not None, m


def run(smoke: bool = False) -> list[Result]:
    rounds = 1 if smoke else 7
    cmd = [civil_words(), "--help"]
    bare = [sys.executable, "-c", "pass"]
    torch, traced = imports_torch(cmd)
    ours, floor = [], []
    for _ in range(rounds):
        ours.append(traced if smoke else measure(cmd))
        floor.append(measure(bare))
    wall, rss = median([m.wall for m in ours]), median([m.rss for m in ours])
    return [
        Result(
            "civil-words --help, whole process",
            f"{seconds(wall)}, {rss:.0f} MB" + (", imports torch" if torch else ", no torch"),
            f"python -c pass: {seconds(median([m.wall for m in floor]))}, "
            f"{median([m.rss for m in floor]):.0f} MB",
            wall,
            HELP,
            judged=not smoke,
            note=f"wall and peak RSS, medians of {rounds} interleaved runs"
            + (" (with -X importtime)" if smoke else "")
            + "; torch imported "
            f"(python -X importtime): {'yes' if torch else 'no'} (issue 18: no, <= 0.3 s)",
        )
    ]


def main() -> int:
    return exact_main(__doc__, run, "command line")


if __name__ == "__main__":
    sys.exit(main())
