"""`civil-words train` and `civil-words tune`: word list -> model file."""

from __future__ import annotations

import argparse
import sys

from service.cli.args import (
    SEED_END,
    SMOOTHING_HELP,
    UsageError,
    finite,
    int_in,
    language_option,
    orders,
    split_options,
)
from service.lm.defaults import MAX_ORDER, MIN_ORDER, TrainConfig

NEURAL_OPTIONS = ("steps", "lr", "reg", "seed")


def add_train(sub) -> None:
    d = TrainConfig()
    t = sub.add_parser("train", help="train a model on a word list and write a model file")
    t.add_argument(
        "--words", required=True, metavar="FILE", help="word list: UTF-8, one word per line"
    )
    t.add_argument("--out", required=True, metavar="FILE", help="model file to write")
    t.add_argument(
        "--steps",
        type=int_in(0),
        default=None,
        help=f"gradient descent steps (default {d.steps}; 0 keeps the initial W)",
    )
    t.add_argument("--lr", type=finite(0.0), default=None, help=f"learning rate (default {d.lr:g})")
    t.add_argument(
        "--reg",
        type=finite(0.0),
        default=None,
        help=f"weight of the mean(W**2) term (default {d.reg:g})",
    )
    t.add_argument(
        "--seed",
        type=int_in(0, SEED_END),
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
        type=int_in(MIN_ORDER, MAX_ORDER + 1),
        default=None,
        metavar="N",
        help=f"counts: the next symbol depends on the last N - 1 symbols, {MIN_ORDER} <= N <= "
        f"{MAX_ORDER} (default 2)",
    )
    t.add_argument("--smoothing", default=None, metavar="S", help=SMOOTHING_HELP)
    split_options(t)
    language_option(t)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(run=run_train, usage=t)


def _method(args: argparse.Namespace):
    from service.lm.methods import MethodError, Neural, counting_method

    neural = {k: getattr(args, k) for k in NEURAL_OPTIONS if getattr(args, k) is not None}
    if args.method == "counts":
        if neural:
            given = ", ".join(f"--{k}" for k in neural)
            raise UsageError(f"{given}: options of the neural method, not of --method counts")
        try:
            return counting_method(args.order or 2, args.smoothing)
        except MethodError as e:
            raise UsageError(f"--order/--smoothing: {e}") from None
    if args.smoothing is not None:
        raise UsageError("--smoothing: an option of --method counts")
    if args.order not in (None, 2):
        raise UsageError(
            f"--order {args.order}: the neural method is the notebook's, of order 2; for longer "
            "contexts use --method counts (Kneser-Ney)"
        )
    return Neural(TrainConfig(**neural))


def run_train(args: argparse.Namespace) -> int:
    method = _method(args)  # usage errors before anything heavy is loaded
    from tqdm import tqdm

    from service.lm.methods import Neural
    from service.lm.train import Split, train_to_file

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
            args.words,
            args.out,
            method,
            on_step,
            Split(args.holdout, args.split_seed),
            language=args.language,
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


def add_tune(sub) -> None:
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
        type=orders,
        default=tuple(range(MIN_ORDER, MAX_ORDER + 1)),
        metavar="A-B",
        help=f"the orders to try, 'A-B' or one number, within {MIN_ORDER}-{MAX_ORDER} "
        f"(default {MIN_ORDER}-{MAX_ORDER})",
    )
    split_options(u, default_holdout=0.1)
    language_option(u)
    u.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    u.set_defaults(run=run_tune, usage=u)


def _smoothing_name(k) -> str:
    return k if isinstance(k, str) else f"add-k:{k:g}"


def run_tune(args: argparse.Namespace) -> int:
    if args.holdout <= 0:
        raise UsageError("--holdout: tune measures every candidate on held-out words: 0 < F < 1")
    import json

    from service.lm.train import Split, tune

    split = Split(args.holdout, args.split_seed)
    results, best = tune(args.words, args.out, split, args.orders, language=args.language)
    chosen = (best.method.order, best.method.config()["smoothing"])
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
            "order": chosen[0],
            "smoothing": chosen[1],
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
        mark = "  <- best" if (row["order"], row["smoothing"]) == chosen else ""
        print(
            f"{row['order']:>5}  {_smoothing_name(row['smoothing']):<12}  {row['nll']:>9.4f}  "
            f"{row['holdout_nll']:>12.4f}{mark}"
        )
    print(f"{args.out}: version {best.version}, {best.method.describe()}")
    return 0


COMMANDS = (add_train, add_tune)
