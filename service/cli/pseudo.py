"""`civil-words pseudo`: pseudowords matched to target words (SPEC section 8), the answer of
POST /pseudowords: for each target, novel words of its length whose OLD20 and NLL per symbol lie
within tolerances of the target's; a readable table, its CSV or its JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from service.cli.args import int_in, lexicon_option, number_in, output_options, seed_option
from service.cli.sample import constraint_error, open_for_cli
from service.lm.defaults import (
    DEFAULT_NLL_TOLERANCE,
    DEFAULT_OLD20_TOLERANCE,
    DEFAULT_PER_TARGET,
    MAX_PER_TARGET,
    MAX_TARGETS,
    MAX_TOLERANCE,
)

if TYPE_CHECKING:  # torch: imported by the command, not by `--help`
    from service.lm.pseudowords import Figures, Matched


FLAGS = {"model": "--model", "targets": "--targets"}


def add_pseudo(sub) -> None:
    p = sub.add_parser(
        "pseudo",
        help="pseudowords matched to target words: each target's length, OLD20 and NLL/symbol",
        description="For each target word, pseudowords of its length: novel (no training word, "
        "no lexicon word), unique across the answer, whose OLD20 and NLL per symbol lie within "
        "the tolerances of the target's; drawn exactly from the model under those constraints. "
        "Targets that cannot be matched are listed with the reason. The answer of "
        "POST /pseudowords.",
    )
    p.add_argument("--model", required=True, metavar="FILE", help="model file to draw from")
    p.add_argument(
        "--targets",
        required=True,
        metavar="FILE",
        help=f"the target words, one a line (UTF-8, blank lines skipped; '-': standard input), "
        f"1 to {MAX_TARGETS}",
    )
    p.add_argument(
        "--per-target",
        type=int_in(1, MAX_PER_TARGET + 1),
        default=DEFAULT_PER_TARGET,
        metavar="K",
        help=f"pseudowords for each target, 1 to {MAX_PER_TARGET} (default {DEFAULT_PER_TARGET})",
    )
    seed_option(p, "seed of the pseudowords")
    for name, what, default in (
        ("old20", "OLD20", DEFAULT_OLD20_TOLERANCE),
        ("nll", "NLL per symbol", DEFAULT_NLL_TOLERANCE),
    ):
        p.add_argument(
            f"--{name}-tolerance",
            type=number_in(0.0, MAX_TOLERANCE),
            default=default,
            metavar="X",
            help=f"a pseudoword's {what} lies within X of its target's, 0 to "
            f"{MAX_TOLERANCE:g} (default {default:g})",
        )
    lexicon_option(p)
    output_options(
        p,
        csv="CSV, as POST /pseudowords with Accept: text/csv: each target, its pseudowords, "
        "then the unmatched targets",
        json="the JSON answer of POST /pseudowords",
    )
    p.set_defaults(run=run_pseudo, usage=p)


class TargetsError(ValueError):
    """A targets file that cannot be used."""


def read_targets(path: str) -> list[str]:
    """The target words of a file ('-': standard input): one a line, UTF-8 (a byte-order mark
    skipped), blank lines skipped, spaces around a word dropped."""
    name = "standard input" if path == "-" else path
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        raise TargetsError(f"{name}: cannot read the targets ({e.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TargetsError(f"{name}, line {line}: not UTF-8") from None
    targets = [line.strip() for line in text.splitlines() if line.strip()]
    if not targets:
        raise TargetsError(f"{name}: no target word")
    if len(targets) > MAX_TARGETS:
        raise TargetsError(f"{name}: {len(targets)} target words, more than {MAX_TARGETS}")
    return targets


def run_pseudo(args: argparse.Namespace) -> int:
    try:
        targets = read_targets(args.targets)  # before torch is loaded: a bad file fails fast
    except TargetsError as e:
        print(f"civil-words: error: --targets: {e}", file=sys.stderr)
        return 1
    from service.lm.constrained import ConstraintError

    model = open_for_cli(args)
    try:
        matched = model.pseudowords(
            targets, args.per_target, args.seed, args.old20_tolerance, args.nll_tolerance
        )
    except ConstraintError as e:
        return constraint_error(e, FLAGS)
    if args.csv:
        from service.lm.tables import pseudowords_csv

        sys.stdout.write(pseudowords_csv(matched))
    elif args.json:
        answer = matched.json(args.seed, model.version)
        sys.stdout.write(json.dumps(answer, ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(table(matched))
    return 0


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(matched: Matched) -> str:
    """The answer for a reader: one block per target (the target, then its pseudowords indented,
    with their length, OLD20, NLL per symbol and number of neighbours), the unmatched targets
    and why, then the summary (mean and sd of each figure, targets against pseudowords)."""
    words = [f.word for item in matched.items for f in (item.target, *item.pseudowords)]
    width = max([len(w) + 2 for w in words] + [len("pseudoword")]) + 2
    lines = []
    if matched.items:
        lines.append(
            f"{'target':<{width}}{'length':>6}{'OLD20':>8}{'NLL/symbol':>12}{'neighbours':>12}"
        )

    def row(f: Figures, indent: str, note: str = "") -> str:
        return (
            f"{indent + f.word:<{width}}{f.length:>6}{_number(f.old20, 2):>8}"
            f"{_number(f.nll_per_symbol, 3):>12}{len(f.neighbours):>12}{note}"
        ).rstrip()

    for item in matched.items:
        t = item.target
        note = "  in the lexicon" if t.in_lexicon else "  not in the lexicon"
        if t.zipf is not None:
            note += f" (Zipf {t.zipf:g})"
        lines.append(row(t, "", note))
        lines += [row(p, "  ") for p in item.pseudowords]
        lines.append("")
    if matched.unmatched:
        lines.append("unmatched targets:")
        lines += [f"  {u.target}: {u.reason}" for u in matched.unmatched]
        lines.append("")
    summary = matched.summary()
    lines.append(
        f"{'summary':<{width}}{'count':>6}{'length':>14}{'OLD20':>14}{'NLL/symbol':>16}   (mean sd)"
    )
    for name in ("targets", "pseudowords"):
        s = summary[name]
        lines.append(
            f"{name:<{width}}{s['count']:>6}{_mean_sd(s['length'], 2, 14)}"
            f"{_mean_sd(s['old20'], 2, 14)}{_mean_sd(s['nll_per_symbol'], 3, 16)}".rstrip()
        )
    return "\n".join(lines) + "\n"


def _mean_sd(figure: dict, digits: int, size: int) -> str:
    """'mean sd' of a summary figure, right-aligned in `size` columns."""
    sd = _number(figure["sd"], digits)
    return f"{_number(figure['mean'], digits)} {sd:<{digits + 3}}".rjust(size)


COMMANDS = (add_pseudo,)
