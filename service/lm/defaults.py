"""Defaults and bounds shared by the model code and its command line, in a module that imports
nothing heavy: `civil-words --help` and argument errors answer without loading torch."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SEED = 2147483647  # the notebook's seed, for the initial W and its sample
MAX_SEED = 2**63 - 1  # seeds are 0 <= seed <= MAX_SEED, over HTTP and on the command line
DEFAULT_MAX_WORD_LEN = 256  # unconstrained sampling cuts a word at this many symbols
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0
MIN_ORDER, MAX_ORDER = 2, 8  # the orders of the counting models
MAX_ADD_K_ORDER = 4  # add-k's states grow with the contexts' prefixes; its fit is poor beyond
LEXICON_WORDLIST = "large"  # the wordfreq list a model's lexicon reads (service/lm/lexicon.py)
LEXICON_MAX_WORD_LEN = 255  # the longest lexicon word or query (its bounds are uint8)
MAX_OLD20 = float(LEXICON_MAX_WORD_LEN)  # old20_min / old20_max: 0 to this
# Matched pseudowords (POST /pseudowords, `civil-words pseudo`; service/lm/pseudowords.py).
MAX_TARGETS = 500
MAX_PER_TARGET = 20
DEFAULT_PER_TARGET = 5
DEFAULT_OLD20_TOLERANCE = 0.3  # |OLD20 - the target's| at most this
DEFAULT_NLL_TOLERANCE = 0.3  # |NLL per symbol - the target's| at most this
MAX_TOLERANCE = 10.0


def lexicon_languages() -> list[str]:
    """The codes `train --language` takes: those wordfreq has a "large" list for, sorted. Reads
    the package's file names only, not a list; imports wordfreq, so it is called only when a
    language is given."""
    import wordfreq

    return sorted(wordfreq.available_languages(LEXICON_WORDLIST))


def check_language(code: str) -> str:
    """`code` if wordfreq has a "large" list for it; a ValueError naming the valid codes if not."""
    valid = lexicon_languages()
    if code not in valid:
        raise ValueError(
            f"{code!r} is not a language of wordfreq's {LEXICON_WORDLIST!r} lists; choose from "
            + ", ".join(valid)
        )
    return code


@dataclass(frozen=True)
class TrainConfig:
    """Training settings of the neural method; the defaults are the notebook's."""

    steps: int = 600  # full-batch gradient descent steps (0 keeps the initial W)
    lr: float = 50.0  # learning rate: W -= lr * grad
    reg: float = 0.01  # weight of the mean(W**2) regularisation term
    seed: int = DEFAULT_SEED  # seed of the generator that draws the initial W
