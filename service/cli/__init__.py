"""The `civil-words` command line: train, tune, eval, compare, sample, score, pseudo, corpus,
check, serve. Each command's arguments live beside its code (`service/cli/<module>.py`: an
`add_*` that declares them and a `run_*` that does the work); the parser and the argument checks
import nothing heavy, so `--help` and argument errors answer at once, and torch is loaded only
by the commands that run a model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.cli import measure, pseudo, sample, tools, train
from service.cli.args import UsageError

MODULES = (train, measure, sample, pseudo, tools)  # in the order `--help` lists the commands


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="civil-words",
        description="Character-level language models of the French Code civil (the notebook's "
        "bigram network, counting models of order 2 to 8): train them, sample words from "
        "them, serve them over HTTP.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MODULES:
        for add in module.COMMANDS:
            add(sub)
    return p


def _errors() -> tuple[type[Exception], ...]:
    """The errors a command reports in one line (imported only once one was raised)."""
    from service.lm.corpus import WordListError
    from service.lm.lexicon import LexiconError
    from service.lm.measure import IncomparableModels
    from service.lm.store import ModelFileError

    return (WordListError, ModelFileError, IncomparableModels, LexiconError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as e:
        args.usage.error(str(e))  # the command's usage and the message; exits 2
    except BrokenPipeError:
        return 0
    except Exception as e:
        if isinstance(e, _errors()):
            print(f"civil-words: error: {e}", file=sys.stderr)
            return 1
        raise
