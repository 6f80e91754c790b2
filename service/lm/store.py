"""The model file: one safetensors file holding W, the bigram counts and all that describes them.

Tensors: `W` (float32, V x V) and `counts` (int64, V x V). Metadata (safetensors keeps str -> str):
`format`, `alphabet` (JSON list, index order, `.` first), `config` (JSON training settings),
`loss_first`, `loss_last` (the notebook's first and last printed losses), `loss_curve` (JSON
list of [step, loss] pairs, a coarse curve), `loss`/`nll`/`examples` (of the stored W on its
corpus), `corpus_sha256`, `corpus_bytes`, `corpus_words`, `version` (derived from W, counts and
alphabet), `created`, `torch_version`.

safetensors holds no code, so nothing in a file runs on load; every other check is made here and
a file that fails one is refused with a `ModelFileError` that names the file and the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT = "civil-words/1"
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
    W: torch.Tensor  # (V, V) float32
    counts: torch.Tensor  # (V, V) int64
    alphabet: tuple[str, ...]  # index order, "." first
    metadata: dict[str, object] = field(default_factory=dict)  # decoded metadata

    @property
    def version(self) -> str:
        return str(self.metadata["version"])


def content_version(W: torch.Tensor, counts: torch.Tensor, alphabet: tuple[str, ...]) -> str:
    """A short hash of what defines the model: its alphabet, W and counts."""
    h = hashlib.sha256()
    h.update(json.dumps(list(alphabet), ensure_ascii=False).encode("utf-8"))
    h.update(W.contiguous().numpy().astype("<f4").tobytes())
    h.update(counts.contiguous().numpy().astype("<i8").tobytes())
    return h.hexdigest()[:12]


def save_model(
    path: str | os.PathLike,
    W: torch.Tensor,
    counts: torch.Tensor,
    alphabet: tuple[str, ...],
    metadata: dict[str, object],
) -> str:
    """Write a model file atomically; returns its version. `metadata` values are JSON-encoded
    unless they are already strings."""
    meta = {
        k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        for k, v in metadata.items()
    }
    version = content_version(W, counts, alphabet)
    meta.update(
        format=FORMAT,
        alphabet=json.dumps(list(alphabet), ensure_ascii=False),
        version=version,
        torch_version=torch.__version__,
    )
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(
        {"W": W.float().contiguous(), "counts": counts.long().contiguous()}, str(tmp), metadata=meta
    )
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
            if keys != {"W", "counts"}:
                raise ModelFileError(path, f"expected tensors W and counts, found {sorted(keys)}")
            arrays = {k: f.get_tensor(k) for k in ("W", "counts")}
    except SafetensorError as e:
        raise ModelFileError(path, f"not a valid safetensors file ({e})") from None
    except OSError as e:
        raise ModelFileError(path, f"cannot be read ({e.strerror or e})") from None

    missing = [k for k in REQUIRED_META if k not in raw_meta]
    if missing:
        raise ModelFileError(path, f"metadata is missing {', '.join(missing)}")
    if raw_meta["format"] != FORMAT:
        raise ModelFileError(path, f"unknown format {raw_meta['format']!r} (expected {FORMAT!r})")
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
    Wt, Ct = torch.from_numpy(W.copy()), torch.from_numpy(counts.copy())
    if content_version(Wt, Ct, alphabet) != raw_meta["version"]:
        raise ModelFileError(path, "version does not match the content (the file was altered)")
    _check_metadata(path, meta)
    return ModelFile(path=path, W=Wt, counts=Ct, alphabet=alphabet, metadata=meta)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_metadata(path: str, meta: dict[str, object]) -> None:
    """The metadata's types, so that every reader (CLI, service) can use it as it is."""
    for k in ("loss", "nll", "loss_first", "loss_last"):
        if not _is_number(meta[k]):
            raise ModelFileError(path, f"metadata {k!r} is not a finite number")
    for k in ("examples", "corpus_bytes", "corpus_words"):
        if not _is_count(meta[k]):
            raise ModelFileError(path, f"metadata {k!r} is not a non-negative integer")
    sha = meta["corpus_sha256"]
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise ModelFileError(path, "metadata 'corpus_sha256' is not a sha256 hex digest")
    config = meta["config"]
    if not (
        isinstance(config, dict)
        and set(config) == {"steps", "lr", "reg", "seed"}
        and _is_count(config["steps"])
        and _is_count(config["seed"])
        and _is_number(config["lr"])
        and _is_number(config["reg"])
    ):
        raise ModelFileError(path, "metadata 'config' is not {steps, lr, reg, seed}")
    curve = meta["loss_curve"]
    if not (
        isinstance(curve, list)
        and all(
            isinstance(p, list) and len(p) == 2 and _is_count(p[0]) and _is_number(p[1])
            for p in curve
        )
    ):
        raise ModelFileError(path, "metadata 'loss_curve' is not a list of [step, loss] pairs")
