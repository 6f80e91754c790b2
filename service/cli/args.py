"""What every command's arguments share: value types that check as they parse, the seed and
hold-out options, and usage errors. Nothing here imports torch: `--help` and argument errors
answer at once."""

from __future__ import annotations

import argparse
import math

from service.lm.defaults import (
    DEFAULT_SEED,
    MAX_ADD_K_ORDER,
    MAX_ORDER,
    MAX_SEED,
    MIN_ORDER,
    check_language,
)

SEED_END = MAX_SEED + 1  # seeds are 0 <= seed < 2**63, as over HTTP


class UsageError(Exception):
    """Options that do not go together: a usage error (exit 2), as argparse's own."""


def int_in(lo: int, hi: int | None = None):
    """An integer with lo <= value (< hi)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < lo or (hi is not None and v >= hi):
            bound = f"{lo} <= value" + (f" < {hi}" if hi is not None else "")
            raise argparse.ArgumentTypeError(f"{v} is out of range ({bound})")
        return v

    return parse


def finite(lo: float):
    """A finite number >= lo."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v) or v < lo:
            raise argparse.ArgumentTypeError(f"{text} must be a finite number >= {lo}")
        return v

    return parse


def number_in(lo: float, hi: float):
    """A finite number with lo <= value <= hi."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(v) and lo <= v <= hi):
            raise argparse.ArgumentTypeError(f"{text} is out of range ({lo:g} to {hi:g})")
        return v

    return parse


def fraction(text: str) -> float:
    v = finite(0.0)(text)
    if not v < 1:
        raise argparse.ArgumentTypeError(f"{text} must be a number with 0 <= F < 1")
    return v


def orders(text: str) -> tuple[int, ...]:
    """'A-B' or one number, within the counting models' orders."""
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'A-B' or a number") from None
    if not MIN_ORDER <= a <= b <= MAX_ORDER:
        raise argparse.ArgumentTypeError(
            f"{text!r}: orders are within {MIN_ORDER}-{MAX_ORDER}, A <= B"
        )
    return tuple(range(a, b + 1))


def language(text: str) -> str:
    """A language wordfreq has a list for (only its file names are read: no list is loaded)."""
    try:
        return check_language(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def seed_option(p: argparse.ArgumentParser, what: str, default: int | None = DEFAULT_SEED) -> None:
    shown = DEFAULT_SEED if default is None else default
    p.add_argument(
        "--seed", type=int_in(0, SEED_END), default=default, help=f"{what} (default {shown})"
    )


def split_options(p: argparse.ArgumentParser, default_holdout: float = 0.0) -> None:
    """--holdout and --split-seed: which words are kept out of training."""
    p.add_argument(
        "--holdout",
        type=fraction,
        default=default_holdout,
        metavar="F",
        help="hold out round(F x words) words, 0 <= F < 1, and report the model's NLL on them "
        f"(default {default_holdout:g})",
    )
    p.add_argument(
        "--split-seed",
        type=int_in(0, SEED_END),
        default=DEFAULT_SEED,
        metavar="S",
        help=f"seed of the hold-out split (default {DEFAULT_SEED})",
    )


def language_option(p: argparse.ArgumentParser) -> None:
    """--language: the language of the model's lexicon, recorded in its file's config."""
    p.add_argument(
        "--language",
        type=language,
        default=None,
        metavar="CODE",
        help="the language of the model's lexicon (the real words that novel rejects and OLD20 "
        "measures against: wordfreq's list for CODE plus the training words), recorded in the "
        "model file; e.g. fr, as the shipped models (default: none)",
    )


SMOOTHING_HELP = (
    "counts: 'kneser-ney' (interpolated modified Kneser-Ney, any order; the default above "
    f"order 2) or 'add-k:K' (a plain number K too: K > 0 added to every count, orders "
    f"{MIN_ORDER} to {MAX_ADD_K_ORDER}; the default at order 2 is add-k:1, the course's "
    "counting model)"
)


def lexicon_option(p: argparse.ArgumentParser) -> None:
    """--lexicon: the word list that replaces the model's (the server's LEXICON_PATH)."""
    p.add_argument(
        "--lexicon",
        metavar="FILE",
        help="a word list (UTF-8, one word a line, optionally a tab and a Zipf frequency) that "
        "replaces wordfreq's as the model's lexicon, as the server's LEXICON_PATH; the model's "
        "training words are added (default: wordfreq's list for the language the model was "
        "trained with, none without one)",
    )


def output_options(p: argparse.ArgumentParser, csv: str, json: str) -> None:
    """--csv or --json: the HTTP API's CSV or JSON instead of the readable lines."""
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", action="store_true", help=csv)
    out.add_argument("--json", action="store_true", help=json)
