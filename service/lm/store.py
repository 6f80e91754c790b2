"""The model file: one safetensors file holding W, the bigram counts and all that describes them.

Tensors: `W` (float32, V x V), `counts` (int64, V x V), and, in format 2, `words` and optionally
`heldout` (uint8: the UTF-8 of the distinct training words, resp. held-out words, sorted, one per
line). Metadata (safetensors keeps str -> str): `format`, `alphabet` (JSON list, index order, `.`
first), `config` (JSON training settings: method, its parameters, hold-out split, the language
of the model's lexicon), `loss_first`, `loss_last` (the notebook's first and last printed
losses), `loss_curve` (JSON list of [step, loss] pairs, a coarse curve), `loss`/`nll`/`examples`
(of the stored W on its corpus), `holdout` (the held-out words' figures, or null),
`corpus_sha256`, `corpus_bytes`, `corpus_words`, `version` (derived from the tensors and the
alphabet), `created`, `torch_version`; optional, `descent` (neural: how W was computed, {path,
float32_gap, warning}; see `model.train`).

Format 3, a counting model of order N (2 to 8) fitted from n-gram counts: instead of W and
counts, the sparse counts (`service.lm.methods.sparse_tensors`): `contexts` (int32, C x (N - 1):
the seen contexts, sorted, `.` only as a leading run), `ngram_context` (int32, M: a row of
`contexts`), `ngram_symbol` (int32, M) and `ngram_count` (int64, M), sorted by context then
symbol; `config` has `order` and `smoothing` ("kneser-ney" or add-k's K). The model's states and
tables are derived from the counts on load. The version hashes every tensor.

Files of format 1 (written before word lists were stored: W and counts only, a neural model with
`config` {steps, lr, reg, seed}) still load; their `words` is None. Files of formats 1 and 2 are
of order 2 (`config` gets `order` 2 on load). Files written before `train --language` have no
`language` in their `config`: it is None on load (no lexicon of their own).

safetensors holds no code, so nothing in a file runs on load; every other check is made here and
a file that fails one is refused with a `ModelFileError` that names the file and the reason.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from service.lm import methods as training_methods
from service.lm.defaults import MAX_ADD_K_ORDER, MAX_ORDER, MAX_SEED, MIN_ORDER
from service.lm.metadata import TrainingConfig
from service.lm.ngram import max_symbols

FORMAT = "civil-words/2"
SPARSE_FORMAT = "civil-words/3"  # n-gram counts of order N instead of W and counts
LEGACY_FORMAT = "civil-words/1"  # W and counts only, no word list; still loaded
FORMATS = (FORMAT, SPARSE_FORMAT, LEGACY_FORMAT)
MAX_HEADER_BYTES = 1 << 20  # our headers are a few KiB; refuse to parse anything huge
MAX_SYMBOLS = 4096  # bounds V, and so the (V, V) tensors a file may ask us to allocate
REQUIRED_META = (
    "format",
    "alphabet",
    "config",
    "version",
    "loss_first",
    "loss_last",
    "loss_curve",
    "loss",
    "nll",
    "examples",
    "corpus_sha256",
    "corpus_bytes",
    "corpus_words",
)
METHODS = ("neural", "counts")
CONFIG_KEYS = {
    "method",
    "steps",
    "lr",
    "reg",
    "seed",
    "smoothing",
    "holdout",
    "split_seed",
    "language",
}
SPARSE_CONFIG_KEYS = CONFIG_KEYS | {"order"}
SPARSE_TENSORS = training_methods.SPARSE_TENSORS
NEURAL_KEYS = ("steps", "lr", "reg", "seed")  # the neural method's parameters (None for counts)
# A language code as wordfreq names its lists ("fr", "zh"; a subtag allowed); which codes have a
# list is the trainer's check (`defaults.check_language`), not the loader's: loading imports no
# wordfreq.
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")


class ModelFileError(Exception):
    """A model file that cannot be served; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"model file {self.path}: {reason}")


@dataclass
class ModelFile:
    """What a model file holds, checked."""

    path: str
    W: torch.Tensor | None  # (V, V) float32 (None in format 3)
    counts: torch.Tensor | None  # (V, V) int64 (None in format 3)
    alphabet: tuple[str, ...]  # index order, "." first
    metadata: dict[str, object] = field(default_factory=dict)  # decoded metadata
    # The distinct training words, sorted; None in a format-1 file, which has no word list.
    words: tuple[str, ...] | None = None
    # The distinct held-out words, sorted; None when nothing was held out.
    heldout: tuple[str, ...] | None = None
    # The model's tensors by name (W and counts, or the sparse counts), word lists aside.
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def config(self) -> dict[str, object]:
        """Training settings in format 2's shape (a format-1 file's are converted on load)."""
        return self.metadata["config"]  # type: ignore[return-value]

    @property
    def method(self) -> str:
        """'neural' or 'counts'."""
        return str(self.config["method"])

    @property
    def order(self) -> int:
        return int(self.config["order"])

    @property
    def training(self) -> training_methods.Method:
        """The training method object of this file (`service.lm.methods`)."""
        return training_methods.method_of(self.config)


def encode_words(words: Sequence[str]) -> torch.Tensor:
    """A word list as a uint8 tensor: the UTF-8 of the words, one per line."""
    data = "".join(w + "\n" for w in words).encode("utf-8")
    return (
        torch.frombuffer(bytearray(data), dtype=torch.uint8)
        if data
        else torch.empty(0, dtype=torch.uint8)
    )


def content_version(
    W: torch.Tensor,
    counts: torch.Tensor,
    alphabet: tuple[str, ...],
    word_lists: dict[str, torch.Tensor] | None = None,
) -> str:
    """A short hash of what defines the model: its alphabet, W, counts and stored word lists."""
    h = hashlib.sha256()
    h.update(json.dumps(list(alphabet), ensure_ascii=False).encode("utf-8"))
    h.update(W.contiguous().numpy().astype("<f4").tobytes())
    h.update(counts.contiguous().numpy().astype("<i8").tobytes())
    for name, data in sorted((word_lists or {}).items()):
        # Length-prefixed: moving a word from one list to the other changes the hash.
        h.update(f"{name}:{data.numel()}:".encode())
        h.update(data.contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def sparse_version(alphabet: tuple[str, ...], tensors: dict[str, torch.Tensor]) -> str:
    """A short hash of a format-3 file's content: its alphabet and every tensor (name, dtype,
    shape and bytes, by name)."""
    h = hashlib.sha256()
    h.update(json.dumps(list(alphabet), ensure_ascii=False).encode("utf-8"))
    for name, t in sorted(tensors.items()):
        a = t.contiguous().numpy()
        h.update(f"{name}:{a.dtype.str}:{list(a.shape)}:".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:12]


def save_model(
    path: str | os.PathLike,
    W: torch.Tensor | None,
    counts: torch.Tensor | None,
    alphabet: tuple[str, ...],
    metadata: dict[str, object],
    words: Iterable[str],
    heldout: Iterable[str] = (),
    sparse: dict[str, torch.Tensor] | None = None,
) -> str:
    """Write a model file atomically; returns its version. `metadata` values are JSON-encoded
    unless they are already strings. `words` (the training words) and `heldout` (the held-out
    words, if any) are stored as sorted distinct lists. With `sparse` (the sparse counts of a
    model of order N), the file is of format 3 and W and counts are None."""
    meta = {
        k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        for k, v in metadata.items()
    }
    word_lists = {"words": encode_words(sorted(set(words)))}
    heldout = sorted(set(heldout))
    if heldout:
        word_lists["heldout"] = encode_words(heldout)
    if sparse is None:
        version = content_version(W, counts, alphabet, word_lists)
        tensors = {"W": W.float().contiguous(), "counts": counts.long().contiguous()}
    else:
        tensors = {k: v.contiguous() for k, v in sparse.items()}
        version = sparse_version(alphabet, {**tensors, **word_lists})
    meta.update(
        format=FORMAT if sparse is None else SPARSE_FORMAT,
        alphabet=json.dumps(list(alphabet), ensure_ascii=False),
        version=version,
        torch_version=torch.__version__,
    )
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tensors = {**tensors, **word_lists}
    save_file(tensors, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)  # a model is data to share: readable by the service's own user
    os.replace(tmp, path)
    return version


def _read_header_size(path: str) -> int:
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelFileError(
                path, "not a safetensors file (shorter than its 8-byte header size)"
            )
        (n,) = struct.unpack("<Q", head)
        size = os.fstat(f.fileno()).st_size
    if n > MAX_HEADER_BYTES:
        raise ModelFileError(
            path,
            f"not a safetensors model file (header size {n} bytes is over "
            f"the {MAX_HEADER_BYTES}-byte limit)",
        )
    if 8 + n > size:
        raise ModelFileError(path, "truncated: the header runs past the end of the file")
    return n


def _check_alphabet(path: str, alphabet: object) -> tuple[str, ...]:
    if not isinstance(alphabet, list) or not all(isinstance(c, str) for c in alphabet):
        raise ModelFileError(path, "metadata 'alphabet' is not a list of symbols")
    if not alphabet or alphabet[0] != ".":
        raise ModelFileError(path, "alphabet does not start with the '.' marker")
    rest = alphabet[1:]
    if any(len(c) != 1 for c in alphabet):
        raise ModelFileError(path, "alphabet holds an entry that is not a single character")
    if rest != sorted(set(rest)) or "." in rest:
        raise ModelFileError(path, "alphabet is not '.' followed by sorted, distinct characters")
    if any(c.isspace() or not c.isprintable() for c in rest):
        raise ModelFileError(path, "alphabet holds whitespace or a control character")
    return tuple(alphabet)


def load_model(path: str | os.PathLike) -> ModelFile:
    """Read and check a model file; raise `ModelFileError` naming the file and the reason."""
    path = str(path)
    if not os.path.exists(path):
        raise ModelFileError(path, "no such file")
    if not os.path.isfile(path):
        raise ModelFileError(path, "not a regular file")
    _read_header_size(path)
    try:
        with safe_open(path, framework="numpy") as f:
            raw_meta = f.metadata() or {}
            keys = set(f.keys())
            fmt = raw_meta.get("format")
            legacy, sparse = fmt == LEGACY_FORMAT, fmt == SPARSE_FORMAT
            model = set(SPARSE_TENSORS) if sparse else {"W", "counts"}
            expected = model if legacy else model | {"words"}
            if not expected <= keys <= expected | {"heldout"} or (legacy and keys != expected):
                raise ModelFileError(
                    path,
                    f"expected tensors {', '.join(sorted(expected))}"
                    + ("" if legacy else " (and optionally heldout)")
                    + f", found {', '.join(sorted(keys)) or 'none'}",
                )
            arrays = {k: f.get_tensor(k) for k in keys}
    except SafetensorError as e:
        raise ModelFileError(path, f"not a valid safetensors file ({e})") from None
    except OSError as e:
        raise ModelFileError(path, f"cannot be read ({e.strerror or e})") from None

    missing = [k for k in REQUIRED_META if k not in raw_meta]
    if missing:
        raise ModelFileError(path, f"metadata is missing {', '.join(missing)}")
    if raw_meta["format"] not in FORMATS:
        raise ModelFileError(
            path,
            f"unknown format {raw_meta['format']!r} (expected one of "
            f"{', '.join(repr(f) for f in FORMATS)})",
        )
    meta: dict[str, object] = {}
    for k, v in raw_meta.items():
        try:
            meta[k] = json.loads(v)
        except ValueError:
            meta[k] = v
    meta["version"] = raw_meta["version"]
    alphabet = _check_alphabet(path, meta["alphabet"])
    V = len(alphabet)
    if V > MAX_SYMBOLS:
        raise ModelFileError(path, f"alphabet of {V} symbols is over the limit of {MAX_SYMBOLS}")

    word_lists = {}
    for name in ("words", "heldout"):
        if name in arrays:
            a = arrays[name]
            if a.dtype != np.uint8 or a.ndim != 1:
                raise ModelFileError(path, f"{name} is not a 1-D uint8 tensor (UTF-8 text)")
            word_lists[name] = torch.from_numpy(a.copy())
    if sparse:
        tensors = {k: torch.from_numpy(arrays[k].copy()) for k in SPARSE_TENSORS}
        _check_sparse(path, arrays, V)
        content = sparse_version(alphabet, {**tensors, **word_lists})
        W = counts = None
    else:
        W, counts = _check_dense(path, arrays, V)
        tensors = {"W": W, "counts": counts}
        content = content_version(W, counts, alphabet, word_lists)
    if content != raw_meta["version"]:
        raise ModelFileError(path, "version does not match the content (the file was altered)")
    _check_metadata(path, meta, legacy, sparse)
    if sparse:
        _check_sparse_config(path, meta, arrays, V)
    words = heldout = None
    if "words" in word_lists:
        words = _decode_words(path, "words", word_lists["words"])
        if set("".join(words)) != set(alphabet[1:]):
            raise ModelFileError(path, "the training words' symbols are not the alphabet")
    if "heldout" in word_lists:
        heldout = _decode_words(path, "heldout", word_lists["heldout"])
    return ModelFile(
        path=path,
        W=W,
        counts=counts,
        alphabet=alphabet,
        metadata=meta,
        words=words,
        heldout=heldout,
        tensors=tensors,
    )


def _check_dense(path: str, arrays: dict[str, np.ndarray], V: int):
    """W and counts of a format-1 or -2 file, as tensors."""
    W, counts = arrays["W"], arrays["counts"]
    if W.dtype != np.float32 or counts.dtype != np.int64:
        raise ModelFileError(
            path,
            f"wrong dtype: W is {W.dtype} (expected float32), "
            f"counts is {counts.dtype} (expected int64)",
        )
    for name, a in (("W", W), ("counts", counts)):
        if a.shape != (V, V):
            raise ModelFileError(
                path,
                f"wrong shape: {name} is {tuple(a.shape)}, the alphabet "
                f"of {V} symbols needs ({V}, {V})",
            )
    if not np.isfinite(W).all():
        raise ModelFileError(path, "W holds NaN or infinite values")
    if (counts < 0).any() or counts.sum() <= 0:
        raise ModelFileError(path, "counts are negative or all zero")
    return torch.from_numpy(W.copy()), torch.from_numpy(counts.copy())


def _check_sparse(path: str, a: dict[str, np.ndarray], V: int) -> None:
    """The sparse counts of a format-3 file (`service.lm.methods.sparse_tensors`)."""
    ctx, gc, gs, gn = (a[k] for k in SPARSE_TENSORS)
    want = {"contexts": np.int32, "ngram_context": np.int32, "ngram_symbol": np.int32}
    for name, dtype in (*want.items(), ("ngram_count", np.int64)):
        if a[name].dtype != dtype:
            raise ModelFileError(
                path, f"wrong dtype: {name} is {a[name].dtype} (expected {np.dtype(dtype)})"
            )
    if ctx.ndim != 2 or not (MIN_ORDER - 1 <= ctx.shape[1] <= MAX_ORDER - 1) or not len(ctx):
        raise ModelFileError(
            path,
            f"wrong shape: contexts is {tuple(ctx.shape)}, expected (C, N - 1) with C >= 1 and "
            f"{MIN_ORDER} <= N <= {MAX_ORDER}",
        )
    order = ctx.shape[1] + 1
    if V > max_symbols(order):
        raise ModelFileError(
            path, f"an alphabet of {V} symbols is too large for order {order} (keys overflow)"
        )
    M = len(gn)
    if not (gc.ndim == gs.ndim == gn.ndim == 1 and len(gc) == len(gs) == M and M >= 1):
        raise ModelFileError(
            path, "ngram_context, ngram_symbol and ngram_count are not 1-D of one length >= 1"
        )
    if ctx.min() < 0 or ctx.max() >= V:
        raise ModelFileError(path, "contexts hold a symbol index outside the alphabet")
    if gs.min() < 0 or gs.max() >= V:
        raise ModelFileError(path, "ngram_symbol holds a symbol index outside the alphabet")
    if (gn <= 0).any():
        raise ModelFileError(path, "ngram_count holds a count that is not positive")
    if gn.sum(dtype=np.float64) >= 2.0**62:  # the int64 sums made from them must not wrap
        raise ModelFileError(path, "ngram_count's total is too large (2**62 or more)")
    # '.' only as a leading run: a context is the padding then the word's beginning.
    letters = ctx > 0
    if (letters[:, :-1] & ~letters[:, 1:]).any():
        raise ModelFileError(path, "a context holds '.' after a symbol (only a leading run pads)")
    c64 = ctx.astype(np.int64)
    keys = np.zeros(len(ctx), dtype=np.int64)
    for j in range(ctx.shape[1]):
        keys = keys * V + c64[:, j]
    if (np.diff(keys) <= 0).any():
        raise ModelFileError(path, "contexts are not sorted and distinct")
    if keys[0] != 0:
        raise ModelFileError(path, "contexts lack the start context (all '.')")
    if gc.min() < 0 or gc.max() >= len(ctx):
        raise ModelFileError(path, "ngram_context holds an index outside contexts")
    step = np.diff(gc.astype(np.int64))
    if (step < 0).any() or (step > 1).any() or gc[0] != 0 or gc[-1] != len(ctx) - 1:
        raise ModelFileError(path, "ngram_context is not sorted, or a context has no n-gram")
    if ((step == 0) & (np.diff(gs.astype(np.int64)) <= 0)).any():
        raise ModelFileError(path, "a context's ngram_symbol values are not sorted and distinct")
    if set(np.unique(gs).tolist()) != set(range(V)):
        raise ModelFileError(path, "the n-grams' symbols are not the alphabet")


def _check_sparse_config(path: str, meta: dict, a: dict[str, np.ndarray], V: int) -> None:
    config = meta["config"]
    order = a["contexts"].shape[1] + 1
    if config["order"] != order:
        raise ModelFileError(
            path, f"metadata 'config' order {config['order']} does not match contexts (N = {order})"
        )
    if int(a["ngram_count"].sum()) != meta["examples"]:
        raise ModelFileError(path, "metadata 'examples' is not the sum of ngram_count")


def _decode_words(path: str, name: str, data: torch.Tensor) -> tuple[str, ...]:
    """A stored word list: UTF-8, one word per line, sorted and distinct, no marker or space."""
    try:
        text = data.numpy().tobytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFileError(path, f"{name} is not valid UTF-8 (byte {e.start})") from None
    if not text.endswith("\n"):
        raise ModelFileError(path, f"{name} is empty or does not end with a newline")
    words = text[:-1].split("\n")
    for w in words:
        if not w or "." in w or any(c.isspace() or not c.isprintable() for c in w):
            raise ModelFileError(
                path, f"{name} holds an empty word, '.', whitespace or a control character"
            )
    if any(a >= b for a, b in itertools.pairwise(words)):
        raise ModelFileError(path, f"{name} is not sorted and distinct")
    return tuple(words)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_metadata(path: str, meta: dict[str, object], legacy: bool, sparse: bool) -> None:
    """The metadata's types, so that every reader (CLI, service) can use it as it is.

    A format-1 file's `config` is converted to format 2's shape in `meta`; formats 1 and 2
    get `order` 2."""
    for k in ("loss", "nll", "loss_first", "loss_last"):
        if not _is_number(meta[k]):
            raise ModelFileError(path, f"metadata {k!r} is not a finite number")
    for k in ("examples", "corpus_bytes", "corpus_words"):
        if not _is_count(meta[k]):
            raise ModelFileError(path, f"metadata {k!r} is not a non-negative integer")
    sha = meta["corpus_sha256"]
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise ModelFileError(path, "metadata 'corpus_sha256' is not a sha256 hex digest")
    meta["config"] = _check_config(path, meta["config"], legacy, sparse)
    holdout = meta.get("holdout")
    if not (
        holdout is None
        or (
            isinstance(holdout, dict)
            and set(holdout) == {"nll", "examples", "words", "skipped"}
            and (holdout["nll"] is None or _is_number(holdout["nll"]))
            and all(_is_count(holdout[k]) for k in ("examples", "words", "skipped"))
        )
    ):
        raise ModelFileError(
            path, "metadata 'holdout' is not null or {nll, examples, words, skipped}"
        )
    if (holdout is None) != (meta["config"]["holdout"] == 0):
        raise ModelFileError(path, "metadata 'holdout' does not match the config's hold-out")
    curve = meta["loss_curve"]
    if not (
        isinstance(curve, list)
        and all(
            isinstance(p, list) and len(p) == 2 and _is_count(p[0]) and _is_number(p[1])
            for p in curve
        )
    ):
        raise ModelFileError(path, "metadata 'loss_curve' is not a list of [step, loss] pairs")


def _check_config(path: str, config: object, legacy: bool, sparse: bool) -> dict[str, object]:
    if legacy:
        if not (isinstance(config, dict) and set(config) == set(NEURAL_KEYS)):
            raise ModelFileError(path, "metadata 'config' is not {steps, lr, reg, seed}")
        config = {"method": "neural", **config, "smoothing": None, "holdout": 0.0}
        config["split_seed"] = None
    keys = SPARSE_CONFIG_KEYS if sparse else CONFIG_KEYS
    if not sparse and isinstance(config, dict) and config.get("order", 2) == 2:
        config = {k: v for k, v in config.items() if k != "order"}  # order 2 may be stated
    if isinstance(config, dict) and "language" not in config:
        config = {**config, "language": None}  # written before `train --language`
    if not (isinstance(config, dict) and set(config) == keys):
        raise ModelFileError(path, f"metadata 'config' is not {{{', '.join(sorted(keys))}}}")
    method = config["method"]
    if sparse:
        smoothing, order = config["smoothing"], config["order"]
        ok = (
            method == "counts"
            and all(config[k] is None for k in NEURAL_KEYS)
            and _is_count(order)
            and MIN_ORDER <= order <= MAX_ORDER
            and (
                smoothing == training_methods.KNESER_NEY
                # add-k at order 2 is format 2's (W and counts), not sparse counts
                or (_is_number(smoothing) and smoothing > 0 and 2 < order <= MAX_ADD_K_ORDER)
            )
        )
    elif method == "neural":
        ok = (
            _is_count(config["steps"])
            and _is_number(config["lr"])
            and _is_number(config["reg"])
            and _is_count(config["seed"])
            and config["seed"] <= MAX_SEED
            and config["smoothing"] is None
        )
    elif method == "counts":
        ok = (
            all(config[k] is None for k in NEURAL_KEYS)
            and _is_number(config["smoothing"])
            and config["smoothing"] > 0
        )
    else:
        raise ModelFileError(path, f"metadata 'config': unknown method {method!r}")
    holdout, split_seed = config["holdout"], config["split_seed"]
    ok = ok and _is_number(holdout) and 0 <= holdout < 1
    ok = ok and (split_seed is None or (_is_count(split_seed) and split_seed <= MAX_SEED))
    if not ok:
        raise ModelFileError(path, f"metadata 'config' has bad values for the {method} method")
    language = config["language"]
    if not (language is None or (isinstance(language, str) and LANGUAGE.fullmatch(language))):
        raise ModelFileError(path, "metadata 'config' language is not null or a language code")
    if not sparse:
        config = {**config, "order": 2}
    # The shape every reader and /model use (service.lm.metadata), checked once here.
    try:
        TrainingConfig.model_validate(config)
    except ValidationError as e:
        raise ModelFileError(
            path, f"metadata 'config' does not fit its model ({e.errors()[0]['msg']})"
        ) from None
    return config
