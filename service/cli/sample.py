"""`civil-words sample` and `civil-words score`: words from a model file, and their scores."""

from __future__ import annotations

import argparse
import sys

from service.cli.args import int_in, number_in, seed_option
from service.lm.defaults import DEFAULT_MAX_WORD_LEN, MAX_TEMPERATURE, MIN_TEMPERATURE

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
}


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
    g.add_argument("--novel", action="store_true", help="no word of the training word list")
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
    s.set_defaults(run=run_sample, usage=s)


def run_sample(args: argparse.Namespace) -> int:
    from service.lm.constrained import ConstraintError, Constraints
    from service.lm.ready import open_model

    sampler = open_model(args.model, args.max_word_len).constrained
    c = Constraints(
        args.prefix,
        args.min_len,
        args.max_len,
        args.novel,
        args.unique,
        args.temperature,
        args.top_k,
    )
    try:
        words = sampler.sample(args.n, args.seed, c).words
    except ConstraintError as e:
        flags = ", ".join(FLAGS.get(p, p) for p in e.parameters)
        print(f"civil-words: error: {flags}: {e.reason}", file=sys.stderr)
        return 1
    sys.stdout.write("".join(w + "\n" for w in words))
    return 0


def add_score(sub) -> None:
    r = sub.add_parser("score", help="how likely a model finds words: log-probabilities")
    r.add_argument("--model", required=True, metavar="FILE", help="model file to score with")
    r.add_argument(
        "words", nargs="*", metavar="WORD", help="words to score (default: one a line on stdin)"
    )
    r.add_argument(
        "--json", action="store_true", help="one JSON object a line, as GET /score answers"
    )
    r.set_defaults(run=run_score, usage=r)


def run_score(args: argparse.Namespace) -> int:
    from service.lm.ready import open_model
    from service.lm.score import UnknownSymbolError, scores_json

    scorer = open_model(args.model).scorer
    words = args.words or sys.stdin.read().splitlines()
    failed = 0
    for word in words:
        try:
            (s,) = scorer.score([word])
        except UnknownSymbolError as e:
            print(f"civil-words: error: {e.reason}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(scores_json([s])[0])
        else:
            corpus = {True: "in corpus", False: "new", None: "no word list"}[s.in_corpus]
            perplexity = "inf" if s.perplexity is None else f"{s.perplexity:.3f}"
            print(
                f"{s.word}\tlogprob {s.logprob:.4f}\tnll/symbol {s.nll_per_symbol:.4f}"
                f"\tperplexity {perplexity}\t{corpus}"
            )
    return 1 if failed else 0


COMMANDS = (add_sample, add_score)
