"""`civil-words sample` and `civil-words score`: words from a model file, and their scores
(with `--stats`, `--csv` or `--json`, where each word stands among the real words of the model's
lexicon: the figures and the CSV of the HTTP API)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from service.cli.args import (
    int_in,
    lexicon_option,
    number_in,
    output_options,
    seed_option,
)
from service.lm.defaults import DEFAULT_MAX_WORD_LEN, MAX_OLD20, MAX_TEMPERATURE, MIN_TEMPERATURE

if TYPE_CHECKING:  # torch: imported by the commands that run a model, not by `--help`
    from service.lm.constrained import ConstraintError
    from service.lm.ready import ReadyModel
    from service.lm.score import WordScore

# Constraint names (as the HTTP API and the errors say them) -> the sample command's options.
FLAGS = {
    "n": "-n",
    "prefix": "--prefix",
    "min_len": "--min-len",
    "max_len": "--max-len",
    "novel": "--novel",
    "unique": "--unique",
    "temperature": "--temperature",
    "top_k": "--top-k",
    "old20_min": "--old20-min",
    "old20_max": "--old20-max",
    "model": "--model",
}
# The library's words name the server's setting; on the command line it is an option.
NO_LEXICON = "the model has no lexicon: train it with --language (e.g. fr), or give --lexicon FILE"


def add_sample(sub) -> None:
    s = sub.add_parser("sample", help="print words sampled from a model file")
    s.add_argument("--model", required=True, metavar="FILE", help="model file to sample from")
    s.add_argument("-n", type=int_in(1), default=1, help="number of words (default 1)")
    seed_option(s, "sampling seed")
    s.add_argument(
        "--max-word-len",
        type=int_in(1),
        default=DEFAULT_MAX_WORD_LEN,
        help="the longest word (the server's MAX_WORD_LEN): without constraints a word is cut "
        "there, for a model that seldom emits '.'; with constraints no word is longer "
        f"(default {DEFAULT_MAX_WORD_LEN})",
    )
    g = s.add_argument_group(
        "constraints",
        "words are drawn from the model conditioned on these (exactly: each word with "
        "probability P(w) / P(constraints)); without any, the reference loop's words (the "
        "notebook's for its model)",
    )
    g.add_argument("--prefix", default="", help="every word starts with these symbols")
    g.add_argument(
        "--min-len", type=int_in(1), help="fewest symbols per word, prefix included (default: none)"
    )
    g.add_argument(
        "--max-len",
        type=int_in(1),
        help="most symbols per word, prefix included (default: --max-word-len)",
    )
    g.add_argument(
        "--novel",
        action="store_true",
        help="no word of the training word list, nor of the lexicon (accents aside) when the "
        "model has one",
    )
    g.add_argument("--unique", action="store_true", help="no word twice")
    g.add_argument(
        "--temperature",
        type=number_in(MIN_TEMPERATURE, MAX_TEMPERATURE),
        default=1.0,
        help="next-symbol probabilities become softmax(log P / T) "
        f"({MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}, default 1)",
    )
    g.add_argument(
        "--top-k",
        type=int_in(1),
        help="keep only the k most probable next symbols, ties to the lower index (default: all)",
    )
    g.add_argument(
        "--old20-min",
        type=number_in(0.0, MAX_OLD20),
        metavar="X",
        help="OLD20 at least X: the mean edit distance to the 20 closest lexicon words "
        f"(0 to {MAX_OLD20:g}; default: none)",
    )
    g.add_argument(
        "--old20-max", type=number_in(0.0, MAX_OLD20), metavar="X", help="OLD20 at most X"
    )
    lexicon_option(s)
    s.add_argument(
        "--stats",
        action="store_true",
        help="each word with its figures, tab-separated: NLL per symbol, in the lexicon or not, "
        "OLD20, the number of neighbours (lexicon words at distance 1), the nearest words",
    )
    output_options(
        s,
        csv="CSV, as GET /sample with Accept: text/csv (with --stats, each word's figures)",
        json="each word's figures as one JSON object a line, the entries of "
        "GET /sample?stats=true (implies --stats)",
    )
    s.set_defaults(run=run_sample, usage=s)


def open_for_cli(args: argparse.Namespace, max_word_len: int = DEFAULT_MAX_WORD_LEN) -> ReadyModel:
    """The model of `--model` with the lexicon of `--lexicon`: a command has no request
    budget, so its lexicon work is unbounded (its rejection budget stays). A `--lexicon` file
    is read at once, so that a bad one is named even when the answer would not need it
    (`LexiconError`); wordfreq's list is built only when needed."""
    from service.lm.ready import open_model

    model = open_model(args.model, max_word_len, lexicon_path=args.lexicon, lexicon_budget=None)
    if args.lexicon:
        model.lexicon  # noqa: B018 - built now: it raises for a bad file
    return model


def constraint_error(e: ConstraintError, flags: dict[str, str]) -> int:
    """Report a `ConstraintError` naming the options involved; the exit status."""
    from service.lm.constrained import NoLexicon

    names = ", ".join(flags.get(p, p) for p in e.parameters)
    reason = NO_LEXICON if isinstance(e, NoLexicon) else e.reason
    print(f"civil-words: error: {names}: {reason}", file=sys.stderr)
    return 1


def stats_line(s: WordScore) -> str:
    """A word and its figures (a `WordScore` with its lexical figures), tab-separated."""
    head = f"{s.word}\tnll/symbol {s.nll_per_symbol:.4f}"
    x = s.lexical
    if x is None:
        return f"{head}\tno lexicon"
    old20 = "none" if x.old20 is None else f"{x.old20:.2f}"
    nearest = " ".join(f"{w}:{d}" for w, d in x.nearest)
    return (
        f"{head}\t{'in lexicon' if x.in_lexicon else 'not in lexicon'}\told20 {old20}"
        f"\tneighbours {len(x.neighbours)}\tnearest {nearest}"
    )


def run_sample(args: argparse.Namespace) -> int:
    from service.lm.constrained import ConstraintError, Constraints

    model = open_for_cli(args, args.max_word_len)
    c = Constraints(
        args.prefix,
        args.min_len,
        args.max_len,
        args.novel,
        args.unique,
        args.temperature,
        args.top_k,
        args.old20_min,
        args.old20_max,
    )
    try:
        words = model.constrained.sample(args.n, args.seed, c).words
    except ConstraintError as e:
        return constraint_error(e, FLAGS)
    if not (args.stats or args.json):
        if args.csv:
            from service.lm.tables import words_csv

            sys.stdout.write(words_csv(words))
        else:
            sys.stdout.write("".join(w + "\n" for w in words))
        return 0
    from service.lm.score import scores_json
    from service.lm.tables import scores_csv

    scores = model.scorer.score(words, lexical=True)
    if args.csv:
        sys.stdout.write(scores_csv(scores))
    elif args.json:
        sys.stdout.write("".join(line + "\n" for line in scores_json(scores, bigrams=False)))
    else:
        sys.stdout.write("".join(stats_line(s) + "\n" for s in scores))
    return 0


def add_score(sub) -> None:
    r = sub.add_parser("score", help="how likely a model finds words: log-probabilities")
    r.add_argument("--model", required=True, metavar="FILE", help="model file to score with")
    r.add_argument(
        "words", nargs="*", metavar="WORD", help="words to score (default: one a line on stdin)"
    )
    output_options(
        r,
        csv="CSV, as /score with Accept: text/csv: a header, then each word's figures "
        "(with the lexicon's)",
        json="one JSON object a line, as GET /score answers (with the lexicon's figures)",
    )
    lexicon_option(r)
    r.set_defaults(run=run_score, usage=r)


def run_score(args: argparse.Namespace) -> int:
    from service.lm.score import UnknownSymbolError, scores_json

    scorer = open_for_cli(args).scorer
    words = args.words or sys.stdin.read().splitlines()
    lexical = args.json or args.csv  # the plain lines stay fast: no lexicon is built for them
    failed = 0
    scored = []
    for word in words:
        try:
            (s,) = scorer.score([word], lexical=lexical)
        except UnknownSymbolError as e:
            print(f"civil-words: error: {e.reason}", file=sys.stderr)
            failed += 1
            continue
        if args.csv:
            scored.append(s)
        elif args.json:
            print(scores_json([s])[0])
        else:
            corpus = {True: "in corpus", False: "new", None: "no word list"}[s.in_corpus]
            perplexity = "inf" if s.perplexity is None else f"{s.perplexity:.3f}"
            print(
                f"{s.word}\tlogprob {s.logprob:.4f}\tnll/symbol {s.nll_per_symbol:.4f}"
                f"\tperplexity {perplexity}\t{corpus}"
            )
    if args.csv:
        from service.lm.tables import scores_csv

        sys.stdout.write(scores_csv(scored))
    return 1 if failed else 0


COMMANDS = (add_sample, add_score)
