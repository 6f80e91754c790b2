"""Word lists: reading one for training, and building one from raw text.

`build_word_list` follows the rules of `../shared/data/README.md`: on the Code civil text it
reproduces `civil_mots.txt` byte for byte.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

# Rule 3: a token is a maximal run of these characters.
_TOKEN = re.compile(r"[a-zàâçèéêëîïôùûœæ'\-]+")
# Rule 5: elided prefixes split off the front of a token. The longer ones come first:
# `qu'` is a suffix of four of them, and `jusqu'` must not be read as `j'` + `usqu'`.
_ELIDED = (
    "jusqu'",
    "lorsqu'",
    "puisqu'",
    "quoiqu'",
    "qu'",
    "l'",
    "d'",
    "n'",
    "s'",
    "c'",
    "j'",
    "m'",
    "t'",
)
_EDGES = "-'"
_TITLE = re.compile(r"Article \S+")  # rule 1: an article's title line, `Article N`


class WordListError(ValueError):
    """A word list that cannot be trained on; the message names the file (and line)."""


@dataclass(frozen=True)
class WordList:
    words: list[str]
    sha256: str  # of the file's bytes
    size: int  # bytes


def read_words(path: str | Path) -> WordList:
    """Read a training word list as the notebook does (`read().splitlines()`), strictly.

    Refused: a missing or unreadable file, bytes that are not UTF-8, no words, an empty line,
    and a word holding whitespace, a control character or the `.` marker.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise WordListError(f"{path}: no such file") from None
    except OSError as e:
        raise WordListError(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise WordListError(f"{path}: line {line}: not valid UTF-8 (byte {e.start})") from None
    words = text.splitlines()
    if not words:
        raise WordListError(f"{path}: the word list is empty")
    for i, w in enumerate(words, 1):
        if not w:
            raise WordListError(f"{path}: line {i}: empty line (one word per line)")
        for c in w:
            if c == ".":
                raise WordListError(f"{path}: line {i}: {w!r} holds '.', the start/end marker")
            if c.isspace() or not c.isprintable():
                raise WordListError(
                    f"{path}: line {i}: {w!r} holds whitespace or a control character "
                    f"(U+{ord(c):04X})"
                )
    return WordList(words=words, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _strip(token: str) -> str:
    return token.strip(_EDGES)


def tokens(text: str) -> list[str]:
    """The words of a raw text, in order, by rules 1 to 5 (with repeats)."""
    out: list[str] = []
    for line in text.split("\n"):
        if _TITLE.fullmatch(line.rstrip()):
            continue
        line = unicodedata.normalize("NFC", line).lower().replace("\u2019", "'")
        for raw in _TOKEN.findall(line):
            token = _strip(raw)
            while True:
                prefix = next(
                    (p for p in _ELIDED if token.startswith(p) and len(token) > len(p)), None
                )
                if prefix is None:
                    break
                out.append(prefix)
                token = _strip(token[len(prefix) :])
            if token:
                out.append(token)
    return out


def build_word_list(text: str) -> str:
    """The word-list file built from a raw text: sorted unique words, one per line."""
    return "".join(w + "\n" for w in sorted(set(tokens(text))))
