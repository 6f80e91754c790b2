"""Word lists: reading one for training (streamed, checked, counted), and building one from raw
text.

Plain numpy: counting a word list needs no torch (which the model modules import).

`build_word_list` follows the rules of `../shared/data/README.md`: on the Code civil text it
reproduces `civil_mots.txt` byte for byte.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


EOS = "."  # the start/end marker: index 0 of every alphabet, never inside a word
CHUNK_BYTES = 1 << 18  # read at once: bounds a pass's memory (tens of MB), however long the file
# `str.splitlines`, with which the notebook splits its file, also breaks lines at these.
LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_UNSEEN, _BAD, _BREAK = -1, -2, -3  # code point table entries that are not a symbol index
_CODE_POINTS = 0x110000


@dataclass(frozen=True)
class Chunk:
    """Whole lines of a word list, checked."""

    first: int  # 0-based position in the list of the chunk's first word
    text: str  # the words, each followed by "\n"
    ix: np.ndarray  # (len(text),) int32: each character's index in `WordStream.symbols`; "\n" -> 0

    @property
    def words(self) -> list[str]:
        return self.text[:-1].split("\n")


def word_of_pairs(ix: np.ndarray) -> np.ndarray:
    """(len(ix),) int64: for the bigram ending at each position of a chunk (the first one starts
    at the `.` before the chunk), the 0-based index of its word in the chunk. A word's bigrams
    run from `.` -> its first symbol to its last symbol -> `.` (the "\\n" that ends it)."""
    sep = ix == 0
    return np.cumsum(sep) - sep


class WordStream:
    """A word list read once, in chunks of whole lines, checked as it goes.

    The words are the notebook's (`read().splitlines()`); refused, with the file and the line
    (counted as `splitlines` counts them, 1-based): a missing or unreadable file, bytes that are
    not UTF-8, no words, an empty line, and a word holding whitespace, a control character or the
    `.` marker. The first problem in the file is the one reported. Memory stays bounded by
    `chunk_bytes`, whatever the length of the file (a file with no "\\n" at all is one chunk).
    After a whole pass: `lines` (words), `size` (bytes) and `sha256` (of the bytes).
    """

    def __init__(
        self, path: str | Path, chunk_bytes: int = CHUNK_BYTES, words: Sequence[str] | None = None
    ):
        """`words`: read these (a list in memory, named `path` in messages) instead of a file."""
        self.path = str(path)
        self.chunk_bytes = chunk_bytes
        self._words = words
        self.symbols = [EOS]  # every symbol seen so far, in order of first appearance
        self._table = np.full(_CODE_POINTS, _UNSEEN, dtype=np.int32)  # code point -> index
        self._table[ord("\n")] = 0
        self.lines = 0
        self.size = 0
        self.sha256 = ""

    def __iter__(self) -> Iterator[Chunk]:
        self.lines = 0
        h = hashlib.sha256()
        offset = newlines = 0  # bytes and b"\n" before the current block
        for block in self._blocks(h):
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError as e:
                if e.start:  # a problem earlier in the block (a bad word) comes first
                    self._check(block[: e.start].decode("utf-8"))
                line = newlines + block.count(b"\n", 0, e.start) + 1
                raise WordListError(
                    f"{self.path}: line {line}: not valid UTF-8 (byte {offset + e.start})"
                ) from None
            chunk = self._check(text)
            self.lines += chunk.text.count("\n")
            offset += len(block)
            newlines += block.count(b"\n")
            yield chunk
        if self.lines == 0:
            raise WordListError(f"{self.path}: the word list is empty")
        self.sha256 = h.hexdigest()

    def _blocks(self, h) -> Iterator[bytes]:
        """The file's bytes in blocks that end after a b"\\n" (the last one, at the end)."""
        if self._words is not None:
            yield from self._word_blocks(h)
            return
        try:
            f = open(self.path, "rb")  # closed by the `with` below; open errors mapped here
        except FileNotFoundError:
            raise WordListError(f"{self.path}: no such file") from None
        except OSError as e:
            raise WordListError(f"{self.path}: cannot be read ({e.strerror or e})") from None
        with f:
            self.size, carry = 0, b""
            while True:
                try:
                    data = f.read(self.chunk_bytes)
                except OSError as e:
                    raise WordListError(
                        f"{self.path}: cannot be read ({e.strerror or e})"
                    ) from None
                if not data:
                    break
                h.update(data)
                self.size += len(data)
                data = carry + data
                # A b"\n" byte is never part of a longer UTF-8 sequence: a cut after one keeps
                # characters whole, and "\r\n" together.
                cut = data.rfind(b"\n") + 1
                carry = data[cut:]
                if cut:
                    yield data[:cut]
        if carry:
            yield carry

    def _word_blocks(self, h) -> Iterator[bytes]:
        self.size = 0
        step = max(1, self.chunk_bytes // 16)  # words per block: about chunk_bytes of text
        for i in range(0, len(self._words), step):
            data = "".join(w + "\n" for w in self._words[i : i + step]).encode("utf-8")
            h.update(data)
            self.size += len(data)
            yield data

    def _check(self, text: str) -> Chunk:
        """The chunk of `text` (whole lines), or the first problem in it as a WordListError."""
        full = text if text.endswith("\n") else text + "\n"
        codes = np.frombuffer(full.encode("utf-32-le"), dtype=np.uint32)
        ix = self._table[codes]
        if len(ix) and ix.min() < 0:
            for c in np.unique(codes[ix == _UNSEEN]).tolist():
                self._table[c] = self._classify(chr(c))
            ix = self._table[codes]
            if (ix == _BREAK).any():
                # Rare (say, "\r\n" line ends): split as the notebook does, then as usual.
                full = "".join(w + "\n" for w in text.splitlines())
                codes = np.frombuffer(full.encode("utf-32-le"), dtype=np.uint32)
                ix = self._table[codes]
        problems = []
        if full.startswith("\n"):
            problems.append(0)
        elif (p := full.find("\n\n")) >= 0:
            problems.append(p + 1)
        if len(ix) and ix.min() < 0:
            problems.append(int(np.argmax(ix < 0)))
        if problems:
            self._fail(full, min(problems))
        return Chunk(first=self.lines, text=full, ix=ix)

    def _classify(self, c: str) -> int:
        if c in LINE_BREAKS:
            return _BREAK
        if c == EOS or c.isspace() or not c.isprintable():
            return _BAD
        self.symbols.append(c)
        return len(self.symbols) - 1

    def _fail(self, text: str, p: int) -> None:
        line = self.lines + text.count("\n", 0, p) + 1
        if text[p] == "\n":
            raise WordListError(f"{self.path}: line {line}: empty line (one word per line)")
        w = text[text.rfind("\n", 0, p) + 1 : text.find("\n", p)]
        if text[p] == EOS:
            raise WordListError(f"{self.path}: line {line}: {w!r} holds '.', the start/end marker")
        raise WordListError(
            f"{self.path}: line {line}: {w!r} holds whitespace or a control character "
            f"(U+{ord(text[p]):04X})"
        )


def read_words(path: str | Path) -> WordList:
    """Read a whole training word list into memory, checked as `WordStream` checks it."""
    stream = WordStream(path)
    words: list[str] = []
    for chunk in stream:
        words += chunk.words
    return WordList(words=words, sha256=stream.sha256, size=stream.size)


@dataclass
class CountedWords:
    """A word list counted in one pass: the training words' bigrams, and what was held out."""

    alphabet: tuple[str, ...]  # "." then the training words' symbols, sorted
    counts: np.ndarray  # (V, V) int64: counts[a, b] = bigrams a -> b in the training words
    words: set[str]  # the distinct training words
    heldout: Counter[str]  # the held-out words, with how often each occurs in the list
    lines: int  # words in the list, training and held out


def count_words(
    chunks: Iterable[Chunk], symbols: list[str], held=None, ngrams=None
) -> CountedWords:
    """Count the bigrams of a stream's training words in one pass, vectorised per chunk.

    `symbols` is the stream's list (it grows as the stream is read); `held` (bool, one per word
    of the list, or None) marks the held-out words, which are kept aside with their counts.
    `ngrams` (a `service.lm.ngram.NgramCounter`, or None) is given each chunk too, to count
    the n-grams of a model of order N in the same pass.
    Memory: the (S, S) counts, the distinct words and one chunk at a time.
    """
    acc = np.zeros((1, 1), dtype=np.int64)
    words: set[str] = set()
    heldout: Counter[str] = Counter()
    lines = 0
    for chunk in chunks:
        chunk_words = chunk.words
        keep = None
        if held is not None:
            h = held[chunk.first : chunk.first + len(chunk_words)]
            if h.any():
                keep = ~h[word_of_pairs(chunk.ix)]
                heldout.update(itertools.compress(chunk_words, h))
                chunk_words = list(itertools.compress(chunk_words, ~h))
        words.update(chunk_words)
        lines += int(np.count_nonzero(chunk.ix == 0))
        S = len(symbols)
        if acc.shape[0] < S:  # new symbols: make room
            grown = np.zeros((S, S), dtype=np.int64)
            grown[: acc.shape[0], : acc.shape[1]] = acc
            acc = grown
        acc += _bigram_counts(chunk.ix, S, keep)
        if ngrams is not None:
            ngrams.add(chunk, symbols, keep)
    # The notebook's alphabet: the training words' symbols, in sorted order.
    present = [i for i in range(1, acc.shape[0]) if acc[i].any()]
    order = [0, *sorted(present, key=lambda i: symbols[i])]
    alphabet = tuple(symbols[i] for i in order)
    return CountedWords(alphabet, acc[np.ix_(order, order)], words, heldout, lines)


def _bigram_counts(ix: np.ndarray, S: int, keep=None) -> np.ndarray:
    """(S, S) int64 counts of a chunk's bigrams: the pairs (previous, next) of `.` + ix;
    `keep` (bool, one per bigram) selects some."""
    prev = np.empty(len(ix), dtype=np.int64)
    prev[0] = 0
    prev[1:] = ix[:-1]
    prev *= S
    prev += ix
    if keep is not None:
        prev = prev[keep]
    return np.bincount(prev, minlength=S * S).reshape(S, S)


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
