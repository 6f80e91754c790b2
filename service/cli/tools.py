"""`civil-words corpus`, `check` and `serve`."""

from __future__ import annotations

import argparse
import sys


def add_corpus(sub) -> None:
    c = sub.add_parser("corpus", help="print the word list built from a raw text")
    c.add_argument("text", metavar="TEXT_FILE", help="raw text, as ../shared/data/code_civil.txt")
    c.set_defaults(run=run_corpus, usage=c)


def run_corpus(args: argparse.Namespace) -> int:
    from pathlib import Path

    from service.lm.corpus import WordListError, build_word_list

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


def add_check(sub) -> None:
    k = sub.add_parser("check", help="check that a model file can be served")
    k.add_argument("--model", required=True, metavar="FILE", help="model file to check")
    k.set_defaults(run=run_check, usage=k)


def run_check(args: argparse.Namespace) -> int:
    from service.lm.ready import open_model

    m = open_model(args.model)
    print(
        f"{args.model}: ok, version {m.version}, {len(m.alphabet)} symbols, order "
        f"{m.lm.order}, {m.lm.S} states ({m.method.describe()})"
    )
    return 0


def add_serve(sub) -> None:
    s = sub.add_parser(
        "serve",
        help="run the HTTP service under gunicorn (settings from the "
        "environment: MODEL_PATH, PORT, WEB_CONCURRENCY, ...)",
    )
    s.set_defaults(run=run_serve, usage=s)


def run_serve(args: argparse.Namespace) -> int:
    from service.server.serve import serve

    return serve()


COMMANDS = (add_corpus, add_check, add_serve)
