"""The real words a pseudoword must not be, and how far a word stands from them (SPEC section 8).

A `Lexicon` holds entries as listed (NFC, lower case, accents kept), each with its Zipf frequency
when the source gives one. Two questions are asked of it:

- Lexicality, `lookup(word)`: the entries whose accent-folded form equals the word's (a French
  reader takes `tete` for `tête`). Folding: NFC, lower case, then each character's canonical
  decomposition without its combining marks, and `œ` -> `oe`, `æ` -> `ae` (`coeur` is `cœur`).
- The neighbourhood, `neighbourhood(word)`, on the entries as listed (not folded): `old20`, the
  mean Levenshtein distance to the 20 closest entries other than the word itself (Yarkoni,
  Balota & Yap 2008); `neighbours`, the entries at distance 1; `nearest`, the k closest with
  their distances. Ties are broken by lexicon order: for wordfreq, the more frequent word first
  (then alphabetical, as wordfreq lists them); for a file, file order; extra words come last.

The default source is the `wordfreq` package's French list ("large": 311,419 words in wordfreq
3.1.1, most frequent first, each with its Zipf frequency), read from the data file the package
ships: nothing is downloaded. wordfreq is Apache-2.0; its data is CC BY-SA 4.0 (Robyn Speer,
wordfreq, https://doi.org/10.5281/zenodo.7199437): whatever shows or ships figures computed
from it credits wordfreq and that licence. A file (`LEXICON_PATH`) replaces it: one word a
line, optionally a tab and a Zipf frequency. Extra words (a model's training words) are added
after either, without frequency.

The neighbourhood search is exact, and fast on one core (numpy, and rapidfuzz's C kernel for
the distances). Entries are stored sorted by length, with a table `H[c, i]`: how many
characters of class `c` entry `i` holds (the 39 most frequent characters of the lexicon each
have a class, all others share one). For a word `q` of length m and an entry `e` of length n,
`max(m, n) - common(q, e)` is a lower bound on their distance, where `common` sums, class by
class, the smaller of the two counts (an edit changes at most one character on each side;
merging rare characters into one class can only raise `common`). The search walks levels
t = 0, 1, 2, ...: at level t it measures (exact distance) every entry whose bound is t, and
stops at the first level where 20 entries other than the word lie within t. Every entry
within t has then been measured (one not measured has a bound, hence a distance, above t), so
the 20 smallest distances, the neighbours (levels 0 and 1 are always finished) and the nearest
are exact. Details that keep it fast, each exact:
- the bound is computed only for lengths m - T .. m + T (|m - n| is a bound too), T widened
  as the levels go up; the levels below the smallest bound are skipped;
- levels that cannot settle (20 entries or fewer, the word among them, have a bound up to
  there) are measured at once; the last level is measured in chunks and cut short once 20
  entries lie within t, in lexicon order when the nearest still need some of its entries (none
  left unmeasured can come before them), else in memory order;
- once 20 entries are known, the distance kernel stops at the 20th smallest distance so far.
On 1,000 words sampled from the shipped model, against the whole list, it measures about
4,000 entries a word, where a scan measures 311,419 (bench/bench_lexicon.py).

Work is counted in exact distance computations: every call takes a `budget` of them and
raises `LexiconBudgetExceeded` before spending more; a search never measures an entry twice.
The bound costs at most one pass over the lexicon per word, not counted here: a request's
`Allowance` charges it as SEARCH_COST per search, and remembers searches (per process) while
charging them as if made again. Two words fall outside the bound's range and are answered
directly: the empty word (every entry lies at its length) and a word longer than MAX_WORD_LEN
(every entry measured). With `above`, a search may stop as soon as the levels it completed
prove OLD20 greater (`Neighbourhood.old20_above`): what the OLD20 filters ask.

Memory: about 45 MB for wordfreq's list (the entries as strs, 20 MB; `H`, 12 MB; arrays). The
lexicon is built once, in the service's master before it forks; it is read only afterwards.
(Workers share its pages; the strs they measure have their reference counts written, so those
pages become private to the worker over time, up to the 20 MB of strs.)
"""

from __future__ import annotations

import math
import threading
import unicodedata
import weakref
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from service.lm.defaults import LEXICON_MAX_WORD_LEN, LEXICON_WORDLIST

OLD_N = 20  # OLD20: the mean distance to the 20 closest entries
NEAREST_K = 5  # how many closest entries `nearest` gives by default
# The longest entry or query, in characters (the bound is computed in uint8), and the list.
MAX_WORD_LEN = LEXICON_MAX_WORD_LEN
WORDFREQ_LANGUAGE = "fr"
WORDFREQ_LIST = LEXICON_WORDLIST

_CLASSES = 40  # the 39 most frequent characters of the lexicon each a class, the rest one
_FIRST_CHUNK = 128  # entries measured at once in a level that may be cut short (at least)
_MAX_CHUNK = 8192  # (at most)


class LexiconError(ValueError):
    """A lexicon source that cannot be used (a bad file line, an empty list)."""


class LexiconBudgetExceeded(RuntimeError):
    """A neighbourhood search would need more distance computations than its budget."""

    def __init__(self, word: str, budget: int, spent: int, wanted: int):
        self.word, self.budget, self.spent, self.wanted = word, budget, spent, wanted
        super().__init__(
            f"the neighbourhood of {word!r} needs more than the budget of {budget} distance "
            f"computations ({spent} spent, {wanted} more wanted)"
        )


@dataclass(frozen=True)
class Entry:
    """A lexicon entry as listed, with its Zipf frequency (None when the source gives none)."""

    word: str
    zipf: float | None


@dataclass(frozen=True)
class Neighbourhood:
    """A word's figures against the lexicon, all from one search."""

    word: str  # the word as searched: NFC, lower case
    old20: float | None  # mean distance to the 20 closest entries (fewer if the lexicon is small)
    neighbours: tuple[str, ...]  # the entries at distance 1, in lexicon order
    nearest: tuple[tuple[str, int], ...]  # the k closest (entry, distance): distance, then order
    work: int  # exact distance computations spent
    # Set when a search stopped early (`above`): OLD20 is known only to exceed this lower
    # bound; `old20` is then None and the other figures are incomplete.
    old20_above: float | None = None


# -- normalisation -------------------------------------------------------------------------------


def normalize(word: str) -> str:
    """A word as the lexicon lists it: NFC, lower case."""
    if word.isascii():
        return word.lower()
    # Lower-casing can undo NFC (rarely): normalise again after it.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", word).lower())


_LIGATURES = {"œ": "oe", "æ": "ae"}


class _FoldTable(dict):
    """`str.translate` table, filled on first use: a character -> itself without accents."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        folded = _LIGATURES.get(ch)
        if folded is None:
            folded = "".join(
                c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)
            )
        self[code] = folded
        return folded


_FOLD = _FoldTable()
for _code in range(0x80, 0x250):  # Latin letters filled now, before any lexicon is built:
    _FOLD[_code]  # a table entry made amid a build would pin its heap pages


def fold(word: str) -> str:
    """The accent-folded form that lexicality compares: `fold('Tête') == fold('tete') == 'tete'`."""
    if word.isascii():
        return word.lower()
    # Most words are NFC, and stay so in lower case: `normalize` without its two passes.
    if unicodedata.is_normalized("NFC", word):
        low = word.lower()
        if unicodedata.is_normalized("NFC", low):
            return low.translate(_FOLD)
    return normalize(word).translate(_FOLD)


def _checked(word: str, where: str) -> str:
    w = normalize(word)
    if not w:
        raise LexiconError(f"{where}: an empty word")
    if len(w) > MAX_WORD_LEN:
        raise LexiconError(f"{where}: a word longer than {MAX_WORD_LEN} characters")
    return w


# -- sources -------------------------------------------------------------------------------------


def wordfreq_entries(
    lang: str = WORDFREQ_LANGUAGE, wordlist: str = WORDFREQ_LIST
) -> tuple[list[str], np.ndarray]:
    """wordfreq's list for `lang`, most frequent first, with Zipf frequencies.

    Read straight from the file the package ships (`read_cBpack`, no network, no cache kept:
    `get_frequency_list` would keep a second copy in an lru_cache). The list is bucketed by
    frequency in centibels; bucket i holds the words of Zipf (900 - i) / 100, which is what
    `wordfreq.zipf_frequency(word, lang, wordlist)` answers for a listed word.
    """
    import wordfreq

    files = wordfreq.available_languages(wordlist)
    if lang not in files:
        raise LexiconError(f"wordfreq has no {wordlist!r} list for {lang!r}")
    words: list[str] = []
    zipf: list[float] = []
    sizes: list[int] = []
    for i, bucket in enumerate(wordfreq.read_cBpack(files[lang])):
        if bucket:
            words.extend(bucket)
            zipf.append(round(wordfreq.cB_to_zipf(-i), 2))
            sizes.append(len(bucket))
    return words, np.repeat(np.array(zipf), sizes)


def read_word_file(path: str | Path) -> tuple[list[str], list[float | None]]:
    """A word list file: one word a line, optionally a tab and a Zipf frequency.

    UTF-8 (a byte-order mark is skipped); blank lines are skipped; either every line has the
    frequency column or none does. A bad line raises `LexiconError` naming the file and line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    except OSError as e:
        raise LexiconError(f"{path}: cannot read the lexicon file ({e.strerror})") from None
    words: list[str] = []
    zipf: list[float | None] = []
    with_zipf: bool | None = None
    for n, line in enumerate(raw.split(b"\n"), start=1):
        where = f"{path}, line {n}"
        try:
            text = line.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError:
            raise LexiconError(f"{where}: not UTF-8") from None
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) > 2:
            raise LexiconError(f"{where}: expected a word, optionally a tab and a Zipf frequency")
        if with_zipf is None:
            with_zipf = len(fields) == 2
        elif with_zipf != (len(fields) == 2):
            raise LexiconError(
                f"{where}: the Zipf column must be on every line or on none"
                f" ({'it is missing' if with_zipf else 'unexpected'} here)"
            )
        if fields[0].strip() != fields[0]:
            raise LexiconError(f"{where}: {fields[0]!r} has spaces around it")
        words.append(_checked(fields[0], where))
        if with_zipf:
            try:
                z = float(fields[1])
            except ValueError:
                z = math.nan
            if not math.isfinite(z):
                raise LexiconError(f"{where}: {fields[1]!r} is not a Zipf frequency")
            zipf.append(z)
        else:
            zipf.append(None)
    if not words:
        raise LexiconError(f"{path}: the lexicon file lists no word")
    return words, zipf


# -- the lexicon ---------------------------------------------------------------------------------


class Lexicon:
    """Entries with Zipf frequencies, a lexicality index and a neighbourhood index.

    Built once (the service builds it in the master, before forking its workers); read only
    afterwards. Internally entries are ordered by length (then lexicon order), `_rank` gives
    each its lexicon position.
    """

    def __init__(
        self,
        words: Sequence[str],
        zipf: Sequence[float | None] | np.ndarray | None = None,
        extra: Iterable[str] = (),
        source: str = "words",
    ):
        if isinstance(zipf, np.ndarray) or zipf is None:
            freqs = zipf
        else:
            freqs = np.array([np.nan if z is None else z for z in zipf], dtype=np.float64)
        if freqs is not None and len(freqs) != len(words):
            raise LexiconError(f"{source}: {len(words)} words but {len(freqs)} frequencies")
        text = _normalized_text(words, source) if len(words) else ""
        self._setup(text, len(words), freqs, extra, source)
        del text
        _give_back_freed_memory()

    def _setup(
        self, text: str, n: int, zipf: np.ndarray | None, extra: Iterable[str], source: str
    ) -> None:
        """`text`: the n listed words, normalised, one a line; `zipf`: their frequencies."""
        extra = list(extra)
        if not n and not extra:
            raise LexiconError(f"{source}: no word")
        self.source = source
        # Listed words first, extra words after: a word present twice keeps its first place
        # (so an extra word already listed keeps the listed entry) and its highest frequency.
        if extra:
            more = _normalized_text(extra, f"{source} (extra words)")
            text = f"{text}\n{more}" if n else more
        zipfs = np.full(n + len(extra), np.nan)
        if zipf is not None:
            zipfs[:n] = zipf
        self._build(text, zipfs, n)

    # construction --------------------------------------------------------------------------

    @classmethod
    def from_wordfreq(
        cls, lang: str = WORDFREQ_LANGUAGE, wordlist: str = WORDFREQ_LIST, extra: Iterable[str] = ()
    ) -> Lexicon:
        """wordfreq's list (the package's shipped data) plus `extra` words."""
        words, zipf = wordfreq_entries(lang, wordlist)
        text = _normalized_text(words, "wordfreq")
        n = len(words)
        del words  # freed before the entries are made: they reuse its memory
        lexicon = cls.__new__(cls)
        source = f"wordfreq {_dist_version('wordfreq')} {lang} ({wordlist})"
        lexicon._setup(text, n, zipf, extra, source)
        del text
        _give_back_freed_memory()
        return lexicon

    @classmethod
    def from_file(cls, path: str | Path, extra: Iterable[str] = ()) -> Lexicon:
        """A word list file (`read_word_file`) plus `extra` words."""
        words, zipf = read_word_file(path)
        return cls(words, zipf, extra, source=str(path))

    def __reduce__(self):
        # The lexicality index holds str hashes, which differ between interpreters: a lexicon
        # is used where it was built, or in processes forked from there.
        raise TypeError("a Lexicon is not pickled: build it where it is used, or fork")

    def _build(self, text: str, zipf: np.ndarray, n_listed: int) -> None:
        """Index the entries of `text` (normalised words, one a line, in lexicon order).

        Everything happens on arrays of code points: the only per-entry Python objects made
        are the final strs, allocated one after the other in length order. (The entries one
        level measures then lie close together in memory, and no temporary list of 300,000
        strs is left to fragment the heap.)
        """
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        del text
        breaks = np.flatnonzero(cps == 10)
        starts = np.concatenate([[0], breaks + 1])
        lens = np.concatenate([breaks, [len(cps)]]) - starts
        N = len(lens)
        if lens.min() == 0:
            raise LexiconError(f"{self.source}: an empty word")
        if lens.max() > MAX_WORD_LEN:
            raise LexiconError(f"{self.source}: a word longer than {MAX_WORD_LEN} characters")
        order = np.argsort(lens, kind="stable")  # by length, then lexicon order
        sorted_lens = lens[order]
        total = int(sorted_lens.sum())
        offsets = np.zeros(N, dtype=np.int64)  # where each entry's characters start, sorted
        np.cumsum(sorted_lens[:-1], out=offsets[1:])
        first_of = np.repeat(starts[order] - offsets, sorted_lens)
        chars = cps[first_of + np.arange(total)]  # every entry's characters, length order
        del cps, first_of, starts
        out = np.full(total + N - 1, 10, dtype=np.uint32)  # the same, a line break between
        out[np.arange(total) + np.repeat(np.arange(N), sorted_lens)] = chars
        words = out.tobytes().decode("utf-32-le").split("\n")
        del out

        if len(set(words)) < N:  # a word listed twice (say, an extra word wordfreq lists)
            words, keep, zipf = _first_places(words, order, zipf)
            chars = chars[np.repeat(keep, sorted_lens)]
            order, sorted_lens = order[keep], sorted_lens[keep]
            N = len(words)
            offsets = np.zeros(N, dtype=np.int64)
            np.cumsum(sorted_lens[:-1], out=offsets[1:])
        self._words: list[str] = words
        self.listed = int((order < n_listed).sum())  # entries from the source, then extra words
        self._rank = order.astype(np.int32)  # internal index -> lexicon position
        self._zipf = zipf[order]
        self._lens = sorted_lens.astype(np.uint8)
        self._max_len = int(sorted_lens[-1])
        # _start[n]: first internal index of the entries of length >= n (n = 0 .. max_len + 1)
        self._start = np.searchsorted(sorted_lens, np.arange(self._max_len + 2)).astype(np.int64)

        # Character classes: the most frequent characters of the lexicon, the rest share one.
        top = np.bincount(chars[:: max(1, total // 1_000_000)])
        top = [chr(c) for c in np.argsort(-top, kind="stable")[: _CLASSES - 1] if top[c]]
        self._class_of = {c: i for i, c in enumerate(top)}
        self._other = other = len(top)
        code_of = np.full(max((ord(c) for c in top), default=0) + 1, other, dtype=np.uint8)
        for c, i in self._class_of.items():
            code_of[ord(c)] = i
        classes = code_of[np.minimum(chars, len(code_of) - 1)]
        classes[chars >= len(code_of)] = other
        del chars
        # H[c, i]: how many characters of class c entry i holds. Position by position, one
        # (class, entry) pair per entry, so the fancy += loses no update.
        self._H = H = np.zeros((other + 1, N), dtype=np.uint8)
        for j in range(self._max_len):
            rows = np.arange(self._start[j + 1], N)
            H[classes[offsets[rows] + j], rows] += 1
        del classes, offsets

        # Lexicality: the hashes of the accent-folded forms, sorted, and their entries. (A dict
        # would hold an int object per entry; this holds 12 bytes.)
        keys = np.fromiter(
            (hash(w if w.isascii() else w.translate(_FOLD)) for w in words),
            dtype=np.int64,
            count=N,
        )
        by_key = np.argsort(keys, kind="stable")
        self._keys = keys[by_key]
        self._key_entry = by_key.astype(np.int32)

    # reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._words)

    def __iter__(self):
        """The entries as listed, in lexicon order."""
        words = self._words
        return (words[i] for i in np.argsort(self._rank).tolist())

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and bool(self._matches(word))

    @property
    def extra(self) -> int:
        """How many entries came from the extra words."""
        return len(self) - self.listed

    def describe(self) -> dict:
        """What `/model` would say of it."""
        return {"source": self.source, "size": len(self), "extra_words": self.extra}

    def entry(self, i: int) -> Entry:
        z = float(self._zipf[i])
        return Entry(self._words[i], None if math.isnan(z) else z)

    def lookup(self, word: str) -> list[Entry]:
        """The entries the word is taken for (accent-folded equality), in lexicon order."""
        ids = self._matches(word)
        return [self.entry(i) for i in sorted(ids, key=self._rank.__getitem__)]

    def contains(self, words: Sequence[str]) -> np.ndarray:
        """`word in lexicon` for many words at once (bool array): about 1 us a word where `in`
        takes 3."""
        keys = [fold(w) for w in words]
        hashes = np.fromiter(map(hash, keys), dtype=np.int64, count=len(keys))
        at = np.searchsorted(self._keys, hashes)
        hit = at < len(self._keys)
        hit[hit] = self._keys[at[hit]] == hashes[hit]
        out = np.zeros(len(keys), dtype=bool)
        for j in np.flatnonzero(hit).tolist():  # equal hashes: check the forms
            out[j] = self._scan(keys[j], hashes[j], int(at[j]), first=True) != []
        return out

    def _matches(self, word: str) -> list[int]:
        key = fold(word)
        h = hash(key)
        return self._scan(key, h, int(np.searchsorted(self._keys, h)))

    def _scan(self, key: str, h: int, at: int, first: bool = False) -> list[int]:
        """The entries folding to `key` (only the first one found with `first`), from `at`,
        the first place of hash `h` in `_keys`."""
        keys, words, ids = self._keys, self._words, []
        while at < len(keys) and keys[at] == h:
            i = int(self._key_entry[at])
            w = words[i]
            # Equal hashes, different forms: rare, but checked. (An entry equal to the folded
            # key folds to it: folding is idempotent.)
            if w == key or fold(w) == key:
                ids.append(i)
                if first:
                    break
            at += 1
        return ids

    # the neighbourhood ---------------------------------------------------------------------

    def neighbourhood(
        self, word: str, k: int = NEAREST_K, budget: int | None = None
    ) -> Neighbourhood:
        """OLD20, neighbours and the k nearest entries of `word`, exact, from one search.

        `budget`: the most exact distance computations to spend (None: no limit beyond the
        lexicon's size, which one search never exceeds); `LexiconBudgetExceeded` past it.
        """
        return self._search(self._query(word), k, budget)

    def old20(self, word: str, budget: int | None = None) -> float | None:
        return self.neighbourhood(word, budget=budget).old20

    def neighbours(self, word: str, budget: int | None = None) -> list[str]:
        return list(self.neighbourhood(word, budget=budget).neighbours)

    def nearest(
        self, word: str, k: int = NEAREST_K, budget: int | None = None
    ) -> list[tuple[str, int]]:
        return list(self.neighbourhood(word, k, budget).nearest)

    def figures(
        self, words: Sequence[str], k: int = NEAREST_K, budget: int | None = None
    ) -> list[Neighbourhood]:
        """`neighbourhood` for each word (a word asked twice is searched once); `budget` is
        for the whole call."""
        queries = [self._query(w) for w in words]
        done: dict[str, Neighbourhood] = {}
        spent = 0
        for q in queries:
            if q in done:
                continue
            left = None if budget is None else budget - spent
            try:
                done[q] = self._search(q, k, left)
            except LexiconBudgetExceeded as e:
                raise LexiconBudgetExceeded(q, budget, spent + e.spent, e.wanted) from None
            spent += done[q].work
        return [done[q] for q in queries]

    def _query(self, word: str) -> str:
        return normalize(word)

    def _bounds(self, q_classes: list[tuple[int, int]], m: int, s: int, e: int) -> np.ndarray:
        """The lower bound max(m, n) - common for internal entries s .. e-1 (uint8)."""
        H = self._H
        common = np.zeros(e - s, dtype=np.uint8)
        hit = np.empty(e - s, dtype=bool)
        hit8 = hit.view(np.uint8)
        for c, mult in q_classes:
            h = H[c, s:e]
            for j in range(1, mult + 1):
                np.greater_equal(h, j, out=hit)
                np.add(common, hit8, out=common)
        # max(m, n): m for the entries not longer than the word, n beyond (sorted by length)
        p = int(self._start[min(m + 1, self._max_len + 1)])
        p = min(max(p, s), e)
        lb = np.empty(e - s, dtype=np.uint8)
        np.subtract(np.uint8(m), common[: p - s], out=lb[: p - s])
        np.subtract(self._lens[p:e], common[p - s :], out=lb[p - s :])
        return lb

    def _search(
        self, q: str, k: int, budget: int | None, above: float | None = None
    ) -> Neighbourhood:
        """`neighbourhood`; with `above`, the search may stop as soon as OLD20 is known to
        exceed it (`Neighbourhood.old20_above`)."""
        if k < 0:
            raise ValueError("k must be >= 0")
        m = len(q)
        if m > MAX_WORD_LEN:  # longer than any entry (the bounds are uint8): measure them all
            if budget is not None and len(self) > budget:
                raise LexiconBudgetExceeded(q, budget, 0, len(self))
            d = cdist([q], self._words, scorer=Levenshtein.distance, dtype=np.int32, workers=1)
            return self._answer(q, k, [np.arange(len(self))], [d[0]], len(self), m + self._max_len)
        if m == 0:  # (a model may make the empty word) every entry lies at its length
            return self._answer(
                q, k, [np.arange(len(self))], [self._lens.astype(np.int32)], 0, MAX_WORD_LEN
            )
        need = max(OLD_N, k)
        top = self._max_len
        classes = Counter(self._class_of.get(c, self._other) for c in q)
        q_classes = sorted(classes.items())

        # The band of lengths lo .. hi whose bounds are known: m - T .. m + T within the lengths
        # there are, grown as the levels go up.
        def band_of(T: int) -> tuple[int, int]:
            return min(max(1, m - T), top), max(min(top, m + T), 1)

        def covers(t: int) -> bool:  # does the band hold every length within t of m?
            want_lo, want_hi = band_of(t)
            return lo <= want_lo and want_hi <= hi

        T = max(1, round(0.6 * m - 0.5))  # about the usual distance of the 20th closest
        lo, hi = band_of(T)
        s, e = int(self._start[lo]), int(self._start[hi + 1])
        band = self._bounds(q_classes, m, s, e)

        words, rank = self._words, self._rank
        found_i: list[np.ndarray] = []
        found_d: list[np.ndarray] = []
        hist = np.zeros(2 * MAX_WORD_LEN + 2, dtype=np.int64)  # measured entries by distance
        spent = 0

        def settled(t: int, last_rank: float) -> bool:
            """Is everything known once all levels < t and level t up to `last_rank` are?"""
            if int(hist[1 : t + 1].sum()) < need:
                return False
            closer = int(hist[1:t].sum())
            if closer >= k:
                return True
            # The nearest need k - closer entries at distance t: the first ones in lexicon
            # order, which are known once that many known ones come before `last_rank`.
            ranks = np.concatenate([rank[i[d == t]] for i, d in zip(found_i, found_d, strict=True)])
            return int((ranks <= last_rank).sum()) >= k - closer

        def measure(ids: np.ndarray) -> None:
            nonlocal spent
            if budget is not None and spent + len(ids) > budget:
                raise LexiconBudgetExceeded(q, budget, spent, len(ids))
            spent += len(ids)
            listed = ids.tolist()
            choices = [words[listed[0]]] if len(listed) == 1 else itemgetter(*listed)(words)
            # Beyond the need-th smallest distance so far, exact values do not matter: the
            # kernel may stop there (it answers cutoff + 1).
            reached = np.flatnonzero(np.cumsum(hist[1:]) >= need)
            cutoff = int(reached[0]) + 1 if len(reached) else None
            d = cdist(
                [q],
                choices,
                scorer=Levenshtein.distance,
                dtype=np.int32,
                workers=1,
                score_cutoff=cutoff,
            )[0]
            found_i.append(ids)
            found_d.append(d)
            hist[: d.max() + 1] += np.bincount(d)

        # No entry lies closer than the smallest bound in the band, nor than the nearest length
        # outside it: the levels below are empty.
        outside = min(
            m - lo + 1 if lo > 1 else MAX_WORD_LEN, hi + 1 - m if hi < top else MAX_WORD_LEN
        )
        t = min(int(band.min()), outside) if len(band) else outside
        top_bound = None  # the largest bound, once the band holds the whole lexicon
        while True:
            if not covers(t):
                T = max(2 * T, t)
                lo2, hi2 = band_of(T)
                s2, e2 = int(self._start[lo2]), int(self._start[hi2 + 1])
                band = np.concatenate(
                    [self._bounds(q_classes, m, s2, s), band, self._bounds(q_classes, m, e, e2)]
                )
                lo, hi, s, e = lo2, hi2, s2, e2
            if top_bound is None and lo == 1 and hi == top:
                top_bound = int(band.max())
            # Levels that cannot settle (need + 1 entries at most, the word itself among them,
            # have a bound up to there) are measured at once, in memory order.
            last = t
            while (
                (top_bound is None or last < top_bound)
                and covers(last + 1)
                and np.count_nonzero(band <= last + 1) <= need
            ):
                last += 1
            if last > t or np.count_nonzero(band <= t) <= need:
                cand = np.flatnonzero((band >= t) & (band <= last))
                if len(cand):
                    measure(cand + s)
                t = last
            else:
                cand = np.flatnonzero(band == t)
                if len(cand):
                    cand += s
                    if t >= 2 and int(hist[1:t].sum()) < k:
                        # The level may be cut short and the nearest need some of its entries:
                        # measure it in lexicon order. (Otherwise memory order is as good.)
                        cand = cand[np.argsort(rank[cand], kind="stable")]
                    size = _FIRST_CHUNK if t >= 2 else len(cand)
                    before = int(hist[t])  # entries at distance t measured in earlier levels
                    at = 0
                    while at < len(cand):
                        chunk = cand[at : at + size]
                        measure(chunk)
                        at += len(chunk)
                        if at < len(cand) and settled(t, float(rank[chunk[-1]])):
                            return self._answer(q, k, found_i, found_d, spent, t)
                        # The next chunk: what is still missing, at the rate seen in this level.
                        missing = max(1, need - int(hist[1 : t + 1].sum()))
                        rate = (int(hist[t]) - before + 1) / (at + 1)
                        size = int(min(max(1.25 * missing / rate, _FIRST_CHUNK), _MAX_CHUNK))
            if settled(t, math.inf):
                return self._answer(q, k, found_i, found_d, spent, t)
            if top_bound is not None and t >= top_bound:  # every entry measured
                return self._answer(q, k, found_i, found_d, spent, MAX_WORD_LEN)
            if above is not None:
                # Levels 1 .. t are complete: the entries missing from the 20 closest lie
                # beyond t, so OLD20 >= (the known distances + (t + 1) for each missing) / 20.
                within = hist[1 : t + 1]
                known = int(within.sum())
                if known < OLD_N:
                    total = int((within * np.arange(1, t + 1)).sum())
                    bound = (total + (OLD_N - known) * (t + 1)) / OLD_N
                    if bound > above and len(self) > OLD_N + 1:
                        return Neighbourhood(q, None, (), (), spent, old20_above=bound)
            t += 1

    def _answer(self, q, k, found_i, found_d, spent, t) -> Neighbourhood:
        """The figures from the measured entries; all those within t are among them."""
        idx = np.concatenate(found_i) if found_i else np.zeros(0, dtype=np.int64)
        dist = np.concatenate(found_d) if found_d else np.zeros(0, dtype=np.int32)
        keep = (dist > 0) & (dist <= t)  # the word itself (distance 0) does not count
        idx, dist = idx[keep], dist[keep]
        order = np.lexsort((self._rank[idx], dist))
        idx, dist = idx[order], dist[order]
        closest = dist[:OLD_N]
        old20 = float(closest.mean()) if len(closest) else None
        words = self._words
        ones = idx[dist == 1]  # already in lexicon order
        return Neighbourhood(
            word=q,
            old20=old20,
            neighbours=tuple(words[i] for i in ones.tolist()),
            nearest=tuple(
                (words[i], int(d)) for i, d in zip(idx[:k].tolist(), dist[:k].tolist(), strict=True)
            ),
            work=spent,
        )


def _normalized_text(words: Sequence[str], source: str) -> str:
    """`normalize` on every word at once, one a line (NFC and lower case do not cross lines)."""
    joined = "\n".join(words)
    if joined.count("\n") != len(words) - 1 or "\r" in joined:
        bad = next(w for w in words if "\n" in w or "\r" in w)
        raise LexiconError(f"{source}: {bad!r} is not a word (a line break in it)")
    if joined.isascii():
        return joined.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", joined).lower())


def _first_places(words: list[str], order: np.ndarray, zipf: np.ndarray):
    """Repeated words dropped: each keeps its first place in lexicon order (`words` is in
    length order, which keeps lexicon order among equal words, `order` their lexicon positions)
    and its highest frequency (`zipf`, by lexicon position). Returns the words kept, which of
    `words` they are, and the frequencies."""
    first: dict[str, int] = {}  # word -> its first index in `words`
    keep = np.ones(len(words), dtype=bool)
    best = zipf.copy()
    ranks = order.tolist()
    for i, w in enumerate(words):
        at = first.setdefault(w, i)
        if at != i:
            keep[i] = False
            z, r = zipf[ranks[i]], ranks[at]
            if not math.isnan(z) and not z <= best[r]:
                best[r] = z
    return [w for w, k in zip(words, keep.tolist(), strict=True) if k], keep, best


def _give_back_freed_memory() -> None:
    """Return the build's freed temporaries to the system (glibc only; elsewhere nothing).

    The service builds the lexicon in its master before forking workers: pages the build
    freed but the allocator kept would stay in every process's RSS and PSS (about 50 MB here).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def load_lexicon(
    path: str | Path | None = None, extra: Iterable[str] = (), language: str = WORDFREQ_LANGUAGE
) -> Lexicon:
    """The lexicon a model uses: the file at `path` (LEXICON_PATH) if given, else wordfreq's
    list for `language`; plus `extra` words (the model's training words)."""
    if path:
        return Lexicon.from_file(path, extra)
    return Lexicon.from_wordfreq(language, extra=extra)


# -- which lexicon a model uses, built once ------------------------------------------------------

# Lexicons built in this process, by source: models with the same source and training words (the
# shipped ones) share one, and a reload reuses it while the old models still hold it.
_BUILT: weakref.WeakValueDictionary[tuple, Lexicon] = weakref.WeakValueDictionary()
_BUILDING = threading.Lock()


class LexiconSource:
    """The lexicon of one model: `path` (LEXICON_PATH) if set, else wordfreq's list for the
    model's `language` (None: the model has no lexicon), plus its training words `extra`.

    Built on first use (`get`): the CLI pays for it only when an answer needs it; the service
    builds it before forking its workers.
    """

    def __init__(
        self, language: str | None, path: str | Path | None = None, extra: Sequence[str] = ()
    ):
        self.language = language
        self.path = str(path) if path else None
        self.extra = tuple(extra)
        self._lexicon: Lexicon | None = None

    def __bool__(self) -> bool:
        return bool(self.path or self.language)

    def get(self) -> Lexicon | None:
        """The lexicon (None if the model has none); `LexiconError` names a bad source."""
        if not self:
            return None
        if self._lexicon is None:
            key = (self.path, None if self.path else self.language, self.extra)
            with _BUILDING:
                lexicon = _BUILT.get(key)
                if lexicon is None:
                    lexicon = load_lexicon(self.path, self.extra, self.language or "")
                    _BUILT[key] = lexicon
                self._lexicon = lexicon
        return self._lexicon


# -- a request's work -------------------------------------------------------------------------

# What one search costs besides its exact distance computations, in their units: the pass that
# bounds the distances (about a millisecond over wordfreq's list on this project's machine,
# some 3,000 distance computations' worth).
SEARCH_COST = 3000
CACHE_WORDS = 4096  # neighbourhoods kept per process and lexicon (bounded LRU)
_CACHES: weakref.WeakKeyDictionary[Lexicon, OrderedDict] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


class Allowance:
    """The lexicon work one request may do: each search costs SEARCH_COST units plus its exact
    distance computations; a search that would go past `limit` raises `LexiconBudgetExceeded`
    (None: unbounded).

    Searches are remembered per process (the last CACHE_WORDS words) but charged as if made
    again: whether a request runs out never depends on what came before it.
    """

    def __init__(self, limit: int | None):
        self.limit = limit
        self.spent = 0

    @property
    def left(self) -> int | None:
        return None if self.limit is None else self.limit - self.spent

    def part(self, limit: int | None) -> Allowance:
        """An allowance of at most `limit` within what is left (charge it back with `add`)."""
        left = self.left
        if left is None:
            return Allowance(limit)
        return Allowance(left if limit is None else min(limit, left))

    def add(self, other: Allowance) -> None:
        self.spent += other.spent

    def neighbourhood(
        self, lexicon: Lexicon, word: str, k: int = NEAREST_K, above: float | None = None
    ) -> Neighbourhood:
        """`lexicon.neighbourhood(word, k)`, charged; with `above`, a search that may stop once
        OLD20 is known to exceed it (`Neighbourhood.old20_above`, for filters)."""
        q = lexicon._query(word)
        key = (q, k, above)
        with _CACHE_LOCK:
            cache = _CACHES.setdefault(lexicon, OrderedDict())
            known = cache.get(key)
            if known is not None:
                cache.move_to_end(key)
        left = self.left
        if left is not None:
            left -= SEARCH_COST
        if known is not None:
            if left is not None and known.work > left:
                raise LexiconBudgetExceeded(q, self.limit, self.spent, SEARCH_COST + known.work)
            found = known
        else:
            if left is not None and left < 0:
                raise LexiconBudgetExceeded(q, self.limit, self.spent, SEARCH_COST)
            try:
                found = lexicon._search(q, k, left, above)
            except LexiconBudgetExceeded as e:
                raise LexiconBudgetExceeded(
                    q, self.limit, self.spent + SEARCH_COST + e.spent, e.wanted
                ) from None
            with _CACHE_LOCK:
                cache[key] = found
                while len(cache) > CACHE_WORDS:
                    cache.popitem(last=False)
        self.spent += SEARCH_COST + found.work
        return found
