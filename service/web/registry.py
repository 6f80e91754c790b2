"""The set of models a server serves: loaded and checked as a whole, then used by name.

`MODEL_PATH` names one model file (served under its file name without the extension) or a
directory: every `<name>.safetensors` in it is served as `name`. A set is built completely, every
file checked, before it is used; a reload builds a new set beside the old one and the server
switches only if the new one is whole (see `service.server.master`). Views ask the set for a model
by name on each request and never keep one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from service.lm.store import ModelFileError
from service.web.schemas import ModelEntry, ModelsResponse
from service.web.served import ServedModel

SUFFIX = ".safetensors"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
NAME_RULE = "a name is 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit"
FALLBACK_NAME = "default"  # a single MODEL_PATH file whose stem is no valid name


class ModelSetError(Exception):
    """A model directory that cannot be served as a whole; the message names it and why."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"model directory {self.path}: {reason}")


class UnknownModel(LookupError):
    def __init__(self, name: str, names: tuple[str, ...]):
        self.name, self.names = name, names
        super().__init__(f"no model named {name!r}; the models are {', '.join(names)}")


def model_files(directory: Path) -> dict[str, Path]:
    """Name -> file of every model in a directory, checked for names only.

    Entries whose name starts with '.' are skipped: editors' and tools' own files, and the
    `..data` links through which Kubernetes mounts a ConfigMap. Anything else that is not
    `<name>.safetensors` with a valid name is refused: a typo must not silently drop a model.
    """
    files: dict[str, Path] = {}
    try:
        entries = sorted(directory.iterdir())
    except OSError as e:
        raise ModelSetError(directory, f"cannot be read ({e.strerror or e})") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        stem = entry.name.removesuffix(SUFFIX)
        if entry.name == stem:
            raise ModelSetError(
                directory, f"{entry.name!r} is not a model file (expected <name>{SUFFIX})"
            )
        if not NAME.fullmatch(stem):
            raise ModelSetError(
                directory, f"{entry.name!r}: {stem!r} is not a model name ({NAME_RULE})"
            )
        files[stem] = entry
    if not files:
        raise ModelSetError(directory, f"holds no model file (<name>{SUFFIX})")
    return files


@dataclass(frozen=True)
class ModelSet:
    """Loaded, checked models by name, and the one a request without `model=` gets."""

    models: dict[str, ServedModel]  # sorted by name
    default: str
    listing: ModelsResponse  # the answer of GET /models, made once

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.models)

    @classmethod
    def load(cls, path: str | Path, default: str | None = None, **options) -> ModelSet:
        """Load every model of `path` (a file or a directory) and check them all; `options` go
        to `ServedModel.load` (the settings that shape sampling).

        Raises `ModelFileError` for the first bad file (naming it) and `ModelSetError` for a
        directory that is not a valid set (bad names, no model, an unknown or missing default).
        """
        path = Path(path)
        if path.is_dir():
            files = model_files(path)
        else:
            stem = path.name.removesuffix(SUFFIX)
            files = {stem if NAME.fullmatch(stem) else FALLBACK_NAME: path}
        models = {name: ServedModel.load(file, name, **options) for name, file in files.items()}
        if default is None:
            if len(models) > 1:
                raise ModelSetError(
                    path,
                    f"serves {len(models)} models: set DEFAULT_MODEL to one of {', '.join(models)}",
                )
            default = next(iter(models))
        elif default not in models:
            where = ModelSetError if path.is_dir() else ModelFileError
            raise where(
                path, f"DEFAULT_MODEL {default!r} is not served (models: {', '.join(models)})"
            )
        listing = ModelsResponse(
            models=[
                ModelEntry(
                    name=name,
                    version=m.version,
                    method=m.file.method,
                    order=m.info.order,
                    smoothing=m.info.config.smoothing,
                    symbols=len(m.file.alphabet),
                    nll=m.loss.nll,
                    holdout_nll=None if m.loss.holdout is None else m.loss.holdout.nll,
                    lexicon=m.info.lexicon,
                    default=name == default,
                )
                for name, m in models.items()
            ]
        )
        return cls(models=models, default=default, listing=listing)

    def get(self, name: str | None = None) -> ServedModel:
        """The model called `name`, or the default one; `UnknownModel` for any other name."""
        if name is None:
            return self.models[self.default]
        try:
            return self.models[name]
        except KeyError:
            raise UnknownModel(name, self.names) from None
