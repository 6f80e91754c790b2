"""The `civil-words` command line: train, tune, eval, compare, sample, score, corpus, check,
serve."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Sequence

from service.lm.corpus import WordListError

MAX_SEED = 2**63  # seeds are 0 <= seed < 2**63, as over HTTP


def _int_in(lo: int, hi: int | None = None):
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


def _finite(lo: float):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v) or v < lo:
            raise argparse.ArgumentTypeError(f"{text} must be a finite number >= {lo}")
        return v

    return parse


def _seed_option(p: argparse.ArgumentParser, what: str) -> None:
    from service.lm.model import DEFAULT_SEED

    p.add_argument(
        "--seed",
        type=_int_in(0, MAX_SEED),
        default=DEFAULT_SEED,
        help=f"{what} (default {DEFAULT_SEED})",
    )


def _number_in(lo: float, hi: float):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(v) and lo <= v <= hi):
            raise argparse.ArgumentTypeError(f"{text} is out of range ({lo:g} to {hi:g})")
        return v

    return parse


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


def build_parser() -> argparse.ArgumentParser:
    from service.lm.constrained import MAX_TEMPERATURE, MIN_TEMPERATURE
    from service.lm.model import TrainConfig
    from service.lm.sampling import DEFAULT_MAX_WORD_LEN

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="civil-words",
        description="Character-level language models of the French Code civil (the notebook's "
        "bigram network, counting models of order 2 to 8): train them, sample words from "
        "them, serve them over HTTP.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model on a word list and write a model file")
    t.add_argument(
        "--words", required=True, metavar="FILE", help="word list: UTF-8, one word per line"
    )
    t.add_argument("--out", required=True, metavar="FILE", help="model file to write")
    t.add_argument(
        "--steps",
        type=_int_in(0),
        default=None,
        help=f"gradient descent steps (default {d.steps}; 0 keeps the initial W)",
    )
    t.add_argument(
        "--lr", type=_finite(0.0), default=None, help=f"learning rate (default {d.lr:g})"
    )
    t.add_argument(
        "--reg",
        type=_finite(0.0),
        default=None,
        help=f"weight of the mean(W**2) term (default {d.reg:g})",
    )
    t.add_argument(
        "--seed",
        type=_int_in(0, MAX_SEED),
        default=None,
        help=f"seed of the initial W (default {d.seed})",
    )
    t.add_argument(
        "--method",
        choices=("neural", "counts"),
        default="neural",
        help="'neural': the notebook's one-layer network (default, order 2); 'counts': the "
        "counting model of --order N",
    )
    t.add_argument(
        "--order",
        type=_int_in(2, 9),
        default=None,
        metavar="N",
        help="counts: the next symbol depends on the last N - 1 symbols, 2 <= N <= 8 (default 2)",
    )
    t.add_argument(
        "--smoothing",
        default=None,
        metavar="S",
        help="counts: 'kneser-ney' (interpolated modified Kneser-Ney, any order; the default "
        "above order 2) or 'add-k:K' (a plain number K too: K > 0 added to every count, "
        "orders 2 to 4; the default at order 2 is add-k:1, the course's counting model)",
    )
    _split_options(t)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(usage=t)

    u = sub.add_parser(
        "tune",
        help="fit every order (and smoothing) of the counting model on a training part, "
        "print each one's held-out NLL, write the best",
    )
    u.add_argument(
        "--words", required=True, metavar="FILE", help="word list: UTF-8, one word per line"
    )
    u.add_argument("--out", required=True, metavar="FILE", help="model file to write (the best)")
    u.add_argument(
        "--orders",
        type=_orders,
        default=(2, 3, 4, 5, 6, 7, 8),
        metavar="A-B",
        help="the orders to try, 'A-B' or one number, within 2-8 (default 2-8)",
    )
    _split_options(u, default_holdout=0.1)
    u.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    u.set_defaults(usage=u)

    s = sub.add_parser("sample", help="print words sampled from a model file")
    s.add_argument("--model", required=True, metavar="FILE", help="model file to sample from")
    s.add_argument("-n", type=_int_in(1), default=1, help="number of words (default 1)")
    s.add_argument(
        "--seed",
        type=_int_in(0, MAX_SEED),
        default=d.seed,
        help=f"sampling seed (default {d.seed})",
    )
    s.add_argument(
        "--max-word-len",
        type=_int_in(1),
        default=DEFAULT_MAX_WORD_LEN,
        help="the longest word (the server's MAX_WORD_LEN): without constraints a word is cut "
        "there, for a model that seldom emits '.'; with constraints no word is longer "
        f"(default {DEFAULT_MAX_WORD_LEN})",
    )
    g = s.add_argument_group(
        "constraints",
        "words are drawn from the model conditioned on these (exactly: each word with "
        "probability P(w) / P(constraints)); without any, the notebook's words",
    )
    g.add_argument("--prefix", default="", help="every word starts with these symbols")
    g.add_argument(
        "--min-len",
        type=_int_in(1),
        help="fewest symbols per word, prefix included (default: no minimum)",
    )
    g.add_argument(
        "--max-len",
        type=_int_in(1),
        help="most symbols per word, prefix included (default: --max-word-len)",
    )
    g.add_argument("--novel", action="store_true", help="no word of the training word list")
    g.add_argument("--unique", action="store_true", help="no word twice")
    g.add_argument(
        "--temperature",
        type=_number_in(MIN_TEMPERATURE, MAX_TEMPERATURE),
        default=1.0,
        help="next-symbol probabilities become softmax(log P / T) "
        f"({MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}, default 1)",
    )
    g.add_argument(
        "--top-k",
        type=_int_in(1),
        help="keep only the k most probable next symbols, ties to the lower index (default: all)",
    )

    r = sub.add_parser("score", help="how likely a model finds words: log-probabilities")
    r.add_argument("--model", required=True, metavar="FILE", help="model file to score with")
    r.add_argument(
        "words", nargs="*", metavar="WORD", help="words to score (default: one a line on stdin)"
    )
    r.add_argument(
        "--json", action="store_true", help="one JSON object a line, as GET /score answers"
    )

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
        type=_int_in(1),
        metavar="N",
        help="sample N words and count how many are in the training list, held out, or new",
    )
    _seed_option(e, "sampling seed for --samples")
    e.add_argument("--json", action="store_true", help="one JSON object instead of a sentence")

    m = sub.add_parser(
        "compare", help="compare two models of one alphabet: KL, max |P_A - P_B|, NLL, words"
    )
    m.add_argument("a", metavar="A", help="model file A (the KL and NLL use its training counts)")
    m.add_argument("b", metavar="B", help="model file B")
    m.add_argument("-n", type=_int_in(1), default=20, help="words compared (default 20)")
    _seed_option(m, "sampling seed")
    m.add_argument("--json", action="store_true", help="one JSON object instead of a table")

    c = sub.add_parser("corpus", help="print the word list built from a raw text")
    c.add_argument("text", metavar="TEXT_FILE", help="raw text, as ../shared/data/code_civil.txt")

    sub.add_parser(
        "serve",
        help="run the HTTP service under gunicorn (settings from the "
        "environment: MODEL_PATH, PORT, WEB_CONCURRENCY, ...)",
    )

    k = sub.add_parser("check", help="check that a model file can be served")
    k.add_argument("--model", required=True, metavar="FILE", help="model file to check")
    return p


def _split_options(p: argparse.ArgumentParser, default_holdout: float = 0.0) -> None:
    from service.lm.model import DEFAULT_SEED

    p.add_argument(
        "--holdout",
        type=_fraction,
        default=default_holdout,
        metavar="F",
        help="hold out round(F x words) words, 0 <= F < 1, and report the model's NLL on them "
        f"(default {default_holdout:g})",
    )
    p.add_argument(
        "--split-seed",
        type=_int_in(0, MAX_SEED),
        default=DEFAULT_SEED,
        metavar="S",
        help=f"seed of the hold-out split (default {DEFAULT_SEED})",
    )


def _orders(text: str) -> tuple[int, ...]:
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'A-B' or a number") from None
    if not 2 <= a <= b <= 8:
        raise argparse.ArgumentTypeError(f"{text!r}: orders are within 2-8, A <= B")
    return tuple(range(a, b + 1))


def _positive(text: str) -> float:
    v = _finite(0.0)(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return v


def _fraction(text: str) -> float:
    v = _finite(0.0)(text)
    if not v < 1:
        raise argparse.ArgumentTypeError(f"{text} must be a number with 0 <= F < 1")
    return v


NEURAL_OPTIONS = ("steps", "lr", "reg", "seed")


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.lm.methods import MethodError, Neural, counting_method
    from service.lm.model import TrainConfig
    from service.lm.train import Split, train_to_file

    neural = {k: getattr(args, k) for k in NEURAL_OPTIONS if getattr(args, k) is not None}
    if args.method == "counts":
        if neural:
            given = ", ".join(f"--{k}" for k in neural)
            raise UsageError(f"{given}: options of the neural method, not of --method counts")
        try:
            method = counting_method(args.order or 2, args.smoothing)
        except MethodError as e:
            raise UsageError(f"--order/--smoothing: {e}") from None
    else:
        if args.smoothing is not None:
            raise UsageError("--smoothing: an option of --method counts")
        if args.order not in (None, 2):
            raise UsageError(
                f"--order {args.order}: the neural method is the notebook's, of order 2; "
                "for longer contexts use --method counts (Kneser-Ney)"
            )
        method = Neural(TrainConfig(**neural))
    steps = method.settings.steps if isinstance(method, Neural) else 0
    bar = tqdm(
        total=steps,
        desc="training",
        unit="step",
        file=sys.stderr,
        disable=args.quiet or not steps,
        mininterval=0.1,
    )

    def on_step(k: int, loss: float) -> None:
        bar.update(1)
        if k % 25 == 0 or k == steps - 1:
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    with bar:
        r = train_to_file(
            args.words, args.out, method, on_step, Split(args.holdout, args.split_seed)
        )
    if r.warning:
        print(f"civil-words: warning: {r.warning}", file=sys.stderr)
    what = (
        f"loss {r.loss_first:.4f} -> {r.loss_last:.4f} in {steps} steps"
        if isinstance(method, Neural)
        else f"{method.describe()}, nll {r.nll:.4f}"
    )
    print(
        f"{args.out}: version {r.version}, {r.examples} examples, {r.symbols} symbols, "
        f"{what}, {r.seconds:.3f} s"
    )
    if r.holdout is not None:
        h = r.holdout
        nll = "-" if h["nll"] is None else f"{h['nll']:.4f}"
        print(
            f"held out: {h['words']} words ({h['skipped']} skipped: a symbol outside the "
            f"alphabet), {h['examples']} examples, nll {nll}"
        )
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    import json

    from service.lm.train import Split, tune

    if args.holdout <= 0:
        raise UsageError("--holdout: tune measures every candidate on held-out words: 0 < F < 1")
    results, best = tune(args.words, args.out, Split(args.holdout, args.split_seed), args.orders)
    rows = [
        {
            "order": r.method.order,
            "smoothing": r.method.config()["smoothing"],
            "nll": r.nll,
            "holdout_nll": r.holdout["nll"],
        }
        for r in results
    ]
    if args.json:
        choice = {
            "order": best.method.order,
            "smoothing": best.method.config()["smoothing"],
            "holdout_nll": best.holdout["nll"],
            "version": best.version,
            "out": args.out,
        }
        print(json.dumps({"candidates": rows, "best": choice}))
        return 0
    h = best.holdout
    print(
        f"held out: {h['words']} words ({h['skipped']} skipped), {h['examples']} symbols; "
        f"split seed {args.split_seed}"
    )
    print(f"{'order':>5}  {'smoothing':<12}  {'train nll':>9}  {'held-out nll':>12}")
    for row in rows:
        k = row["smoothing"]
        name = k if isinstance(k, str) else f"add-k:{k:g}"
        mark = (
            "  <- best"
            if (row["order"], row["smoothing"])
            == (best.method.order, best.method.config()["smoothing"])
            else ""
        )
        print(
            f"{row['order']:>5}  {name:<12}  {row['nll']:>9.4f}  {row['holdout_nll']:>12.4f}{mark}"
        )
    print(f"{args.out}: version {best.version}, {best.method.describe()}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
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


def cmd_compare(args: argparse.Namespace) -> int:
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


def cmd_sample(args: argparse.Namespace) -> int:
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


def cmd_score(args: argparse.Namespace) -> int:
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


def cmd_corpus(args: argparse.Namespace) -> int:
    from pathlib import Path

    from service.lm.corpus import build_word_list

    try:
        text = Path(args.text).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WordListError(f"{args.text}: no such file") from None
    except UnicodeDecodeError as e:
        raise WordListError(
            f"{args.text}: not valid UTF-8 ({e.reason} at byte {e.start})"
        ) from None
    sys.stdout.write(build_word_list(text))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from service.lm.ready import open_model

    m = open_model(args.model)
    print(
        f"{args.model}: ok, version {m.version}, {len(m.alphabet)} symbols, order "
        f"{m.lm.order}, {m.lm.S} states ({m.method.describe()})"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from service.server.serve import serve

    return serve()


COMMANDS = {
    "train": cmd_train,
    "tune": cmd_tune,
    "eval": cmd_eval,
    "compare": cmd_compare,
    "sample": cmd_sample,
    "score": cmd_score,
    "corpus": cmd_corpus,
    "check": cmd_check,
    "serve": cmd_serve,
}


class UsageError(Exception):
    """Options that do not go together: a usage error (exit 2), as argparse's own."""


def main(argv: Sequence[str] | None = None) -> int:
    from service.lm.measure import IncomparableModels
    from service.lm.store import ModelFileError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        args.usage.error(str(e))  # the command's usage and the message; exits 2
    except (WordListError, ModelFileError, IncomparableModels) as e:
        print(f"civil-words: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
