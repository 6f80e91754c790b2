"""The lexicon (`service.lm.lexicon`): sources, accent-folded lexicality, and the neighbourhood
figures against a brute force written here (plain Python Levenshtein over every entry)."""

from __future__ import annotations

import pickle
import random
import subprocess
import sys
import textwrap
import unicodedata

import pytest

from service.lm import lexicon as lexicon_module
from service.lm.lexicon import (
    OLD_N,
    Entry,
    Lexicon,
    LexiconBudgetExceeded,
    LexiconError,
    fold,
    load_lexicon,
    normalize,
    read_word_file,
    wordfreq_entries,
)

FRENCH = "abcdefghijklmnopqrstuvwxyzéèêàâçîïôûœ"


# -- the brute force ----------------------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    """Unit-cost edit distance, the textbook dynamic programme."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1]


def brute(entries: list[str], word: str, k: int = 5):
    """(old20, neighbours, nearest) over `entries` in lexicon order, the word itself left out."""
    q = normalize(word)
    scored = sorted(
        ((levenshtein(q, e), i, e) for i, e in enumerate(entries) if e != q),
        key=lambda x: (x[0], x[1]),
    )
    closest = [d for d, _, _ in scored[:OLD_N]]
    old20 = sum(closest) / len(closest) if closest else None
    neighbours = [e for d, _, e in scored if d == 1]
    nearest = [(e, d) for d, _, e in scored[:k]]
    return old20, neighbours, nearest


def assert_matches_brute(lex: Lexicon, entries: list[str], words: list[str], k: int = 5):
    for w in words:
        got = lex.neighbourhood(w, k=k)
        old20, neighbours, nearest = brute(entries, w, k)
        assert got.old20 == pytest.approx(old20), w
        assert list(got.neighbours) == neighbours, w
        assert list(got.nearest) == nearest, w


def random_word(rng: random.Random, alphabet: str, lo: int = 1, hi: int = 10) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def mutate(rng: random.Random, word: str, alphabet: str) -> str:
    """The word with one to three random edits: close to the lexicon, often not in it."""
    w = list(word)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(3)
        i = rng.randrange(len(w) + 1)
        if op == 0 or not w:
            w.insert(i, rng.choice(alphabet))
        elif op == 1:
            del w[min(i, len(w) - 1)]
        else:
            w[min(i, len(w) - 1)] = rng.choice(alphabet)
    return "".join(w) or rng.choice(alphabet)


def queries(rng: random.Random, entries: list[str], alphabet: str, n: int) -> list[str]:
    """Words in the lexicon, words near it, random words, long words, with accents."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(rng.choice(entries))
        elif kind == 1:
            out.append(mutate(rng, rng.choice(entries), alphabet))
        elif kind == 2:
            out.append(random_word(rng, alphabet, 1, 9))
        else:
            out.append(random_word(rng, alphabet, 10, 18))
    return out


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wordfreq_list():
    return wordfreq_entries()


@pytest.fixture(scope="module")
def full_lexicon():
    return Lexicon.from_wordfreq()


@pytest.fixture(scope="module")
def sample(wordfreq_list):
    """2,000 entries of wordfreq's French list, drawn at random, in its order."""
    words, zipf = wordfreq_list
    picked = sorted(random.Random(17).sample(range(len(words)), 2000))
    entries = [normalize(words[i]) for i in picked]
    return entries, Lexicon(entries, zipf[picked])


SMALL = [
    "chat", "chats", "chatte", "château", "chateau", "chapeau", "cheval", "chevaux", "tête",
    "tete", "tête-à-tête", "bête", "fête", "faite", "fait", "faits", "été", "ete", "œuvre",
    "oeuvre", "cœur", "cour", "court", "cours", "courir", "mur", "mûr", "mure", "sur", "sûr",
    "a", "à", "ah", "ha", "la", "là", "le", "les", "lès", "mer", "mère", "maire", "père",
    "paire", "pair", "pain", "bain", "main", "mains", "maint", "nain", "vin", "vain", "vingt",
    "ver", "vers", "vert", "verre", "voir", "boire", "noir", "soir",
]  # fmt: skip


# -- neighbourhood figures against the brute force ----------------------------------------------


def test_small_lexicon_matches_brute_force():
    rng = random.Random(1)
    lex = Lexicon(SMALL)
    words = SMALL[:20] + queries(rng, SMALL, FRENCH, 60) + ["TÊTE", "te\u0302te", "Chat"]
    assert_matches_brute(lex, SMALL, words)
    assert_matches_brute(lex, SMALL, words[:30], k=30)  # more nearest than OLD20 needs


def test_wordfreq_sample_matches_brute_force(sample):
    entries, lex = sample
    rng = random.Random(2)
    assert_matches_brute(lex, entries, queries(rng, entries, FRENCH, 48))


@pytest.mark.parametrize("seed", [3, 4])
def test_tiny_alphabet_ties_and_anagrams(seed, monkeypatch):
    """Few letters: many entries at each distance, and many whose letter counts match the
    word's though their order does not (the cheap bound far below the distance). Measuring
    one entry at a time checks every place where the last level may be cut short."""
    rng = random.Random(seed)
    alphabet = "abcé"
    entries = list(dict.fromkeys(random_word(rng, alphabet, 1, 8) for _ in range(1500)))
    lex = Lexicon(entries)
    words = queries(rng, entries, alphabet, 24)
    assert_matches_brute(lex, entries, words)
    monkeypatch.setattr(lexicon_module, "_FIRST_CHUNK", 1)
    monkeypatch.setattr(lexicon_module, "_MAX_CHUNK", 3)
    assert_matches_brute(lex, entries, words[:12], k=7)


def test_the_closest_entries_may_lie_far_in_length():
    """The 20 closest include entries |len| - 3 away, and the first one in lexicon order lies
    farthest: a search of lengths that stops before the 20th distance misses them."""
    q = "mmmmmm"
    far = [q + s for s in ("abc", "abd", "abe", "abf", "abg")]  # distance 3, 3 longer
    near = [q[:i] + "xyz" + q[i + 3 :] for i in range(4)]  # distance 3, same length
    filler = [q[:2] + x for x in ("zzzzzz", "yyyyyy", "xxxxxx", "wwwwww")] * 1  # farther
    others = ["".join(p) for p in ("aaaaaa", "bbbbbb", "cccccc")] + [f"m{c * 7}" for c in "pqrst"]
    entries = far + near + filler + others + [f"mmmmm{c}" for c in "pqrstuvwxyz"]  # distance 1
    lex = Lexicon(entries)
    assert_matches_brute(lex, entries, [q, "mmmmmmab", "mmm", "m"], k=20)
    got = lex.neighbourhood(q, k=20)
    assert set(far) <= {w for w, _ in got.nearest}


def test_the_closest_entries_may_lie_outside_the_first_band_of_lengths():
    """A 10-letter word whose closest entries are 3 letters long (a first band of lengths
    would stop short of them), every longer entry sharing no letter with it."""
    q = "abcdefghij"
    short = [q[i : i + 3] for i in range(8)] + [q[i : i + 2] for i in range(0, 10, 2)]
    filler = [c * n for c in "xyz" for n in range(4, 17)]
    entries = filler + short
    for k in (5, 25):
        assert_matches_brute(Lexicon(entries), entries, [q, q + "k", q[:9]], k=k)
    # The other way: a 2-letter word whose closest entries are 4 letters long.
    long = ["ab" + x for x in ("pq", "pr", "ps", "qr")] + ["p" + "ab" + x for x in "qrs"]
    filler = [c * n for c in "xyz" for n in (3, 5, 6)]
    entries = filler + long
    assert_matches_brute(Lexicon(entries), entries, ["ab", "ba", "b"], k=10)


def test_words_far_longer_or_shorter_than_every_entry():
    entries = ["ab", "abc", "b", "ca", "abcd", "bbbb", "a"]
    lex = Lexicon(entries)
    words = ["a" * 60, "abc" * 20, "x" * 255, "z", "é"]
    assert_matches_brute(lex, entries, words, k=10)
    long_entries = ["abcdefghij" * 4, "x" * 40]  # every entry far longer than the words
    assert_matches_brute(Lexicon(long_entries), long_entries, ["a", "ab", "x"])


def test_lexicons_of_every_shape(monkeypatch):
    """Tiny to middling lexicons (fewer entries than OLD20 wants, or just more), alphabets of
    2 to 30 letters, words short and long, k from 0 to more than the lexicon holds."""
    rng = random.Random(8)
    for _ in range(60):
        alphabet = rng.choice(["ab", "abc", "abcdé", FRENCH, "xyz🙂"])
        size = rng.choice([1, 2, 5, 20, 21, 22, 60, 200])
        longest = rng.choice([3, 8, 20])
        entries = list(dict.fromkeys(random_word(rng, alphabet, 1, longest) for _ in range(size)))
        lex = Lexicon(entries)
        chunk = rng.choice([1, 128])
        monkeypatch.setattr(lexicon_module, "_FIRST_CHUNK", chunk)
        monkeypatch.setattr(lexicon_module, "_MAX_CHUNK", 3 if chunk == 1 else 8192)
        words = [rng.choice(entries)] + [random_word(rng, alphabet, 1, 25) for _ in range(3)]
        assert_matches_brute(lex, entries, words, k=rng.choice([0, 1, 5, 21, 300]))


def test_the_word_itself_does_not_count():
    lex = Lexicon(["abc", "abd", "xyz"])
    got = lex.neighbourhood("abc")
    assert got.nearest == (("abd", 1), ("xyz", 3))
    assert got.old20 == 2.0  # fewer than 20 other entries: the mean of those there are
    assert lex.neighbourhood("ABC").nearest == got.nearest  # the word as the lexicon lists it
    assert Lexicon(["abc"]).neighbourhood("abc").old20 is None  # no other entry at all
    assert Lexicon(["ba"]).neighbourhood("ab").nearest == (("ba", 2),)  # bound 0, distance 2
    # Accents count as listed: `abç` is one substitution from `abc`, not the word itself.
    assert Lexicon(["abc", "abç"]).neighbourhood("abc").neighbours == ("abç",)


def test_full_wordfreq_list_matches_rapidfuzz_scan(full_lexicon):
    """On the whole list, against rapidfuzz's scan (the brute force here is too slow for it):
    the same distances, the same nearest in the same order (ties by list order both ways)."""
    import numpy as np
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    entries = list(full_lexicon)
    rng = random.Random(5)
    words = ["tete", "tête", "chat", "anticonstitutionnellement", "xq", "é", "blorvate"]
    words += queries(rng, entries, FRENCH, 12)
    for w in words:
        q = normalize(w)
        d = cdist([q], entries, scorer=Levenshtein.distance, dtype=np.int32, workers=1)[0]
        order = np.lexsort((np.arange(len(d)), d))
        order = order[d[order] > 0]  # the word itself (distance 0) does not count
        got = full_lexicon.neighbourhood(w)
        assert got.old20 == pytest.approx(float(d[order[:OLD_N]].mean())), w
        assert got.nearest == tuple((entries[i], int(d[i])) for i in order[:5]), w
        assert got.neighbours == tuple(entries[i] for i in order[d[order] == 1]), w


def test_figures_batch(sample):
    _, lex = sample
    words = ["maison", "maisom", "xyzzy", "maison", "Maison"]
    got = lex.figures(words)
    assert [g.word for g in got] == ["maison", "maisom", "xyzzy", "maison", "maison"]
    assert got[0] is got[3] is got[4]  # asked three times, searched once
    assert got[1] == lex.neighbourhood("maisom")
    assert lex.old20("maisom") == got[1].old20
    assert lex.neighbours("maisom") == list(got[1].neighbours)
    assert lex.nearest("maisom", k=3) == list(got[1].nearest[:3])


def test_words_longer_than_any_entry_are_measured_against_all():
    """Past 255 characters (the bounds' uint8) every entry is measured: still exact."""
    words = ["abc", "a", "de"] + [f"w{i:03d}" for i in range(30)]
    lex = Lexicon(words)
    for word in ["x" * 256, "ab" * 150]:
        assert_matches_brute(lex, words, [word])
        assert lex.neighbourhood(word).work == len(words)
        with pytest.raises(LexiconBudgetExceeded):
            lex.neighbourhood(word, budget=len(words) - 1)


def test_the_empty_word_stands_at_each_entrys_length():
    """A model can make the empty word (the notebook's can): every entry is its length away."""
    words = ["abc", "a", "de", "b", "fghij", "k"] + [f"w{i:03d}" for i in range(30)]
    nb = Lexicon(words).neighbourhood("")
    lengths = sorted(len(w) for w in words)
    assert nb.old20 == sum(lengths[:20]) / 20
    assert nb.neighbours == ("a", "b", "k")
    assert nb.nearest == (("a", 1), ("b", 1), ("k", 1), ("de", 2), ("abc", 3))


# -- bounded work -------------------------------------------------------------------------------


def test_budget(sample):
    _, lex = sample
    spent = lex.neighbourhood("maisonnette").work
    assert spent > 0
    assert lex.neighbourhood("maisonnette", budget=spent).work == spent
    with pytest.raises(LexiconBudgetExceeded) as e:
        lex.neighbourhood("maisonnette", budget=spent - 1)
    assert "maisonnette" in str(e.value) and str(spent - 1) in str(e.value)
    assert e.value.spent + e.value.wanted > spent - 1
    with pytest.raises(LexiconBudgetExceeded):
        lex.neighbourhood("maisonnette", budget=0)


def test_budget_covers_the_whole_batch(sample):
    _, lex = sample
    words = ["maison", "jardin", "voiture"]
    total = sum(lex.neighbourhood(w).work for w in words)
    assert len(lex.figures(words, budget=total)) == 3
    with pytest.raises(LexiconBudgetExceeded) as e:
        lex.figures(words, budget=total - 1)
    assert e.value.budget == total - 1


def test_no_search_measures_an_entry_twice():
    """The work of one search is bounded by the lexicon's size, whatever the word."""
    rng = random.Random(6)
    entries = list(dict.fromkeys(random_word(rng, "ab", 1, 12) for _ in range(400)))
    lex = Lexicon(entries)
    for w in ["a" * 30, "ab" * 15, "b", "ba" * 6]:
        assert lex.neighbourhood(w, k=len(entries) + 5).work <= len(entries)


# -- lexicality -----------------------------------------------------------------------------------


def test_accent_folded_lookup(full_lexicon):
    matches = full_lexicon.lookup("tete")
    assert [m.word for m in matches][:2] == ["tête", "tete"]  # lexicon order: most frequent first
    assert all(isinstance(m, Entry) and m.zipf is not None for m in matches)
    assert Entry("tête", 5.53) in matches
    assert full_lexicon.lookup("TÊTE") == matches == full_lexicon.lookup("te\u0302te")
    assert "coeur" in full_lexicon and "cœur" in [m.word for m in full_lexicon.lookup("coeur")]
    assert "vont" in full_lexicon and "chat" in full_lexicon
    assert "blorvate" not in full_lexicon and full_lexicon.lookup("blorvate") == []


def test_contains_many(full_lexicon):
    words = ["tete", "blorvate", "Vont", "cœur", "coeur", "xqzw", "te\u0302te", "🙂"]
    assert full_lexicon.contains(words).tolist() == [w in full_lexicon for w in words]
    assert full_lexicon.contains(words).tolist() == [1, 0, 1, 1, 1, 0, 1, "🙂" in full_lexicon]
    assert full_lexicon.contains([]).tolist() == []


def test_zipf_is_wordfreqs(full_lexicon):
    import wordfreq

    for w in ["tête", "chat", "anticonstitutionnellement", "de"]:
        (entry,) = [m for m in full_lexicon.lookup(w) if m.word == w]
        assert entry.zipf == wordfreq.zipf_frequency(w, "fr", wordlist="large")


@pytest.mark.parametrize(
    ("word", "folded"),
    [
        ("Tête", "tete"),
        ("te\u0302te", "tete"),
        ("ŒUVRE", "oeuvre"),
        ("cæcum", "caecum"),
        ("naïve", "naive"),
        ("garçon", "garcon"),
        ("año", "ano"),
        ("chat", "chat"),
    ],
)
def test_fold(word, folded):
    assert fold(word) == folded


def test_extra_words():
    lex = Lexicon(["chat", "chien"], [5.0, 4.5], extra=["chat", "Chaton", "chaton"], source="t")
    assert len(lex) == 3 and lex.listed == 2 and lex.extra == 1
    assert lex.lookup("chat") == [Entry("chat", 5.0)]  # listed: its frequency stays
    assert lex.lookup("chaton") == [Entry("chaton", None)]
    assert list(lex) == ["chat", "chien", "chaton"]  # lexicon order: listed, then extra
    assert lex.describe() == {"source": "t", "size": 3, "extra_words": 1}


def test_a_word_listed_twice_keeps_its_first_place_and_highest_frequency():
    lex = Lexicon(["b", "a", "B", "c", "a"], [1.0, 2.0, 3.0, None, 1.5])
    assert list(lex) == ["b", "a", "c"]
    assert [lex.lookup(w)[0].zipf for w in "bac"] == [3.0, 2.0, None]


def test_not_pickled(sample):
    with pytest.raises(TypeError):
        pickle.dumps(sample[1])


# -- sources ------------------------------------------------------------------------------------


def test_wordfreq_list_is_the_packages_and_reads_no_network():
    """Loaded in a fresh interpreter where any socket use fails."""
    code = textwrap.dedent(
        """
        import socket
        def refuse(*a, **k):
            raise AssertionError("network used")
        socket.socket.connect = socket.socket.connect_ex = refuse
        socket.create_connection = socket.getaddrinfo = refuse
        from service.lm.lexicon import Lexicon
        lex = Lexicon.from_wordfreq()
        print(len(lex), lex.source)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    size, source = out.stdout.split(maxsplit=1)
    assert int(size) > 300_000
    assert source.startswith("wordfreq 3.1.1 fr (large)")


def test_file_with_and_without_zipf(tmp_path):
    with_zipf = tmp_path / "with.tsv"
    with_zipf.write_text("chat\t5.1\nChien\t4.5\n\ntête\t5.53\n", encoding="utf-8")
    lex = Lexicon.from_file(with_zipf, extra=["chaton"])
    assert list(lex) == ["chat", "chien", "tête", "chaton"]
    assert lex.lookup("tete") == [Entry("tête", 5.53)]
    assert lex.lookup("chaton") == [Entry("chaton", None)]
    assert lex.source == str(with_zipf)

    plain = tmp_path / "plain.txt"
    plain.write_text("\ufeffchat\r\nchien\r\n", encoding="utf-8")  # as Windows tools write
    lex = load_lexicon(plain)
    assert list(lex) == ["chat", "chien"] and lex.lookup("chat") == [Entry("chat", None)]
    assert lex.neighbourhood("chats").nearest == (("chat", 1), ("chien", 3))


@pytest.mark.parametrize(
    ("content", "line", "says"),
    [
        ("chat\t5\nchien\n", 2, "on every line or on none"),
        ("chat\nchien\t4\n", 2, "on every line or on none"),
        ("chat\tbeaucoup\n", 1, "not a Zipf frequency"),
        ("chat\tnan\n", 1, "not a Zipf frequency"),
        ("chat\t5\t6\n", 1, "optionally a tab"),
        ("chat\n chien\n", 2, "spaces around"),
        ("chat\n" + "x" * 300 + "\n", 2, "longer than"),
    ],
)
def test_bad_files_are_refused_naming_file_and_line(tmp_path, content, line, says):
    path = tmp_path / "lexique.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LexiconError) as e:
        Lexicon.from_file(path)
    assert f"{path}, line {line}:" in str(e.value) and says in str(e.value)


def test_bad_encoding_and_empty_and_missing_files(tmp_path):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("chat\ntête\n".encode("latin-1"))
    with pytest.raises(LexiconError, match=rf"{latin}, line 2: not UTF-8"):
        read_word_file(latin)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="lists no word"):
        read_word_file(empty)
    with pytest.raises(LexiconError, match="cannot read"):
        read_word_file(tmp_path / "missing.txt")


def test_bad_words_in_lists():
    with pytest.raises(LexiconError, match="line break"):
        Lexicon(["chat", "ch\nien"])
    with pytest.raises(LexiconError, match="empty word"):
        Lexicon(["chat", ""])
    with pytest.raises(LexiconError, match="no word"):
        Lexicon([])
    with pytest.raises(LexiconError, match="frequencies"):
        Lexicon(["chat"], [1.0, 2.0])


def test_normalize():
    assert normalize("TE\u0302TE") == "tête" == unicodedata.normalize("NFC", "te\u0302te")
    assert normalize("Œuvre") == "œuvre"
