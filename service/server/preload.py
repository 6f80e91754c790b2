"""The preloaded app in gunicorn's master: what `serve` (start-up), `master` (SIGHUP reload) and
`gunicorn_conf` (gunicorn run directly) share.

A leaf: it imports nothing from `service.server`, so those three import it and not each other.
"""

from __future__ import annotations

import ctypes
import gc
import shutil
import tempfile
from pathlib import Path

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
# Above it, a block is mmapped and given back when freed: the walks' and chains' large arrays
# (up to tens of MiB). Below, the heap, reused: the lexicon search's arrays (under 1 MiB), which
# mmap would fault in afresh at every search (2.5x slower at 128 KiB).
MMAP_THRESHOLD = 4 * 2**20


def prepare_metrics_dir(configured: Path | None) -> Path:
    """The Prometheus multiprocess directory, created and emptied: samples from an earlier run
    must not be summed into this one."""
    path = configured or Path(tempfile.mkdtemp(prefix="civil-words-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return path


def load_errors() -> tuple[type[Exception], ...]:
    """What a model file or directory that cannot be served raises (it names the file)."""
    from service.lm.lexicon import LexiconError
    from service.lm.store import ModelFileError
    from service.web.registry import ModelSetError

    return (ModelFileError, ModelSetError, LexiconError)


def steady_malloc() -> None:
    """Fix glibc's mmap threshold (MMAP_THRESHOLD) before the models and the lexicon load.

    glibc raises the threshold each time a block it had mmapped is freed, up to 32 MiB: after
    the lexicon's build (which frees blocks of tens of MiB) a request's large temporaries (the
    numpy arrays of a walk, a few MiB each) would come from the heap instead, and a worker
    keeps heap pages once touched, all of them private. With the threshold set, glibc no
    longer moves it, and those arrays go back to the system when freed (bench/: the PSS of
    two workers with the lexicon). Elsewhere than glibc, nothing."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    except (OSError, AttributeError):
        pass


def freeze() -> None:
    """Workers share the preloaded app's memory copy-on-write; a full garbage collection in a
    worker would touch (and so copy) every object inherited from the master. Freeze them."""
    gc.collect()
    gc.freeze()
