"""`civil-words eval` and `civil-words compare`: how good a model is, and how two differ."""

from __future__ import annotations

import argparse
import dataclasses

from service.cli.args import int_in, seed_option


def add_eval(sub) -> None:
    e = sub.add_parser(
        "eval",
        help="a model's mean NLL and perplexity on a word list, or where its samples come from",
    )
    e.add_argument("--model", required=True, metavar="FILE", help="model file to evaluate")
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--words",
        metavar="FILE",
        help="word list to score (UTF-8, one word per line; words with a symbol outside the "
        "model's alphabet are skipped and counted)",
    )
    what.add_argument(
        "--samples",
        type=int_in(1),
        metavar="N",
        help="sample N words and count how many are in the training list, held out, or new",
    )
    seed_option(e, "sampling seed for --samples")
    e.add_argument("--json", action="store_true", help="one JSON object instead of a sentence")
    e.set_defaults(run=run_eval, usage=e)


def run_eval(args: argparse.Namespace) -> int:
    import json

    from service.lm.measure import evaluate, sample_origins
    from service.lm.ready import open_model

    m = open_model(args.model)
    if args.words is not None:
        e = evaluate(m, args.words)
        if args.json:
            print(json.dumps(dataclasses.asdict(e)))
        else:
            figures = (
                "no word scored"
                if e.nll is None
                else (f"nll {e.nll:.4f}, perplexity {e.perplexity:.3f}")
            )
            print(
                f"{args.words}: {figures}, {e.examples} examples, {e.words} words "
                f"({e.skipped} skipped: a symbol outside the alphabet)"
            )
        return 0
    o = sample_origins(m, args.samples, args.seed)
    if args.json:
        print(json.dumps(dataclasses.asdict(o)))
    else:
        print(
            f"{o.n} words sampled (seed {o.seed}): {o.training} in the training list, "
            f"{o.heldout} held out, {o.new} new"
        )
    return 0


def add_compare(sub) -> None:
    m = sub.add_parser(
        "compare", help="compare two models of one alphabet: KL, max |P_A - P_B|, NLL, words"
    )
    m.add_argument(
        "a",
        metavar="A",
        help="model file A (the KL and NLL use its training counts; of an order at least B's)",
    )
    m.add_argument("b", metavar="B", help="model file B")
    m.add_argument("-n", type=int_in(1), default=20, help="words compared (default 20)")
    seed_option(m, "sampling seed")
    m.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    m.set_defaults(run=run_compare, usage=m)


def run_compare(args: argparse.Namespace) -> int:
    import json

    from service.lm.measure import compare
    from service.lm.ready import open_model

    a, b = open_model(args.a), open_model(args.b)
    c = compare(a, b, args.n, args.seed)
    if args.json:
        print(json.dumps(dataclasses.asdict(c), ensure_ascii=False))
        return 0
    for name, m in (("A", a), ("B", b)):
        print(f"{name}: {m.file.path} ({m.method.describe()}, version {m.version})")
    print(f"KL(P_A || P_B), mean over A's training contexts: {c.kl:.6f} nats")
    print(f"max |P_A - P_B|: {c.max_abs_diff:.6f}")
    print(f"NLL on A's training symbols: A {c.nll[0]:.4f}, B {c.nll[1]:.4f}")
    print(f"first {c.n} words, seed {c.seed}: {c.agree} of {c.n} agree")
    width = max(len(w) for w in c.words[0])
    for i, (x, y) in enumerate(zip(*c.words, strict=True), 1):
        print(f"{i:4}  {x.ljust(width)}  {'=' if x == y else '≠'}  {y}")
    return 0


COMMANDS = (add_eval, add_compare)
