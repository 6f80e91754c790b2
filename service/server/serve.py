"""`civil-words serve`: check everything, then hand over to gunicorn."""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError


def _fail(message: str, code: int = 1) -> int:
    print(f"civil-words: error: {message}", file=sys.stderr)
    return code


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


def serve() -> int:
    from service.settings import Settings

    try:
        settings = Settings()
    except ValidationError as e:
        bad = "; ".join(
            f"{'.'.join(map(str, err['loc'])).upper()}: {err['msg']}" for err in e.errors()
        )
        return _fail(f"bad setting: {bad}", 2)
    try:
        metrics_dir = prepare_metrics_dir(settings.prometheus_multiproc_dir)
    except OSError as e:
        return _fail(f"metrics directory {settings.prometheus_multiproc_dir}: {e.strerror or e}")
    # Must be set before prometheus_client is first imported (by the app below).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    import torch

    torch.set_num_threads(1)
    # gunicorn reads WEB_CONCURRENCY when it is imported: only now that the settings are
    # checked (a bad value named, not a traceback).
    from service.server.master import Server
    from service.web.app import create_app

    try:
        server = Server(settings, create_app(settings))
    except load_errors() as e:
        return _fail(f"cannot serve: {e}")
    from service.web import metrics

    metrics.init_reloads()
    freeze()
    server.run()
    return 0


def load_errors() -> tuple[type[Exception], ...]:
    """What a model file or directory that cannot be served raises (it names the file)."""
    from service.lm.store import ModelFileError
    from service.web.registry import ModelSetError

    return (ModelFileError, ModelSetError)


def freeze() -> None:
    """Workers share the preloaded app's memory copy-on-write; a full garbage collection in a
    worker would touch (and so copy) every object inherited from the master. Freeze them."""
    gc.collect()
    gc.freeze()
