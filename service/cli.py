"""The `civil-words` command line: train, sample, corpus, serve."""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    from service.lm.model import DEFAULT_MAX_WORD_LEN, TrainConfig

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="civil-words",
        description="A character-level bigram language model of the French Code civil: "
        "train it, sample words from it, serve it over HTTP.",
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
        default=d.steps,
        help=f"gradient descent steps (default {d.steps}; 0 keeps the initial W)",
    )
    t.add_argument(
        "--lr", type=_finite(0.0), default=d.lr, help=f"learning rate (default {d.lr:g})"
    )
    t.add_argument(
        "--reg",
        type=_finite(0.0),
        default=d.reg,
        help=f"weight of the mean(W**2) term (default {d.reg:g})",
    )
    t.add_argument(
        "--seed",
        type=_int_in(0, MAX_SEED),
        default=d.seed,
        help=f"seed of the initial W (default {d.seed})",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")

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
        "--max-len",
        type=_int_in(1),
        default=DEFAULT_MAX_WORD_LEN,
        help="cut a word at this many symbols, for a model that seldom emits '.' "
        f"(default {DEFAULT_MAX_WORD_LEN})",
    )

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


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.lm.corpus import read_words
    from service.lm.model import TrainConfig
    from service.lm.train import train_to_file

    words = read_words(args.words)
    config = TrainConfig(steps=args.steps, lr=args.lr, reg=args.reg, seed=args.seed)
    bar = tqdm(
        total=config.steps,
        desc="training",
        unit="step",
        file=sys.stderr,
        disable=args.quiet,
        mininterval=0.1,
    )

    def on_step(k: int, loss: float) -> None:
        bar.update(1)
        if k % 25 == 0 or k == config.steps - 1:
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    with bar:
        r = train_to_file(words, args.out, config, on_step)
    print(
        f"{args.out}: version {r.version}, {r.examples} examples, {r.symbols} symbols, "
        f"loss {r.loss_first:.4f} -> {r.loss_last:.4f} in {config.steps} steps, "
        f"{r.seconds:.3f} s"
    )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from service.lm.model import Sampler, probabilities
    from service.lm.store import load_model

    m = load_model(args.model)
    P, _ = probabilities(m.W, m.counts, m.method, m.config["smoothing"])
    words = Sampler(P, m.alphabet).sample(args.n, args.seed, args.max_len)
    sys.stdout.write("".join(w + "\n" for w in words))
    return 0


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
    from service.lm.store import load_model

    m = load_model(args.model)
    print(f"{args.model}: ok, version {m.version}, {len(m.alphabet)} symbols")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from service.server.serve import serve

    return serve()


COMMANDS = {
    "train": cmd_train,
    "sample": cmd_sample,
    "corpus": cmd_corpus,
    "check": cmd_check,
    "serve": cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    from service.lm.store import ModelFileError

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (WordListError, ModelFileError) as e:
        print(f"civil-words: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
