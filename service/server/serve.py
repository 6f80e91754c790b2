"""`civil-words serve`: check everything, then hand over to gunicorn."""

from __future__ import annotations

import os
import sys

from pydantic import ValidationError

from service.server.preload import freeze, load_errors, prepare_metrics_dir, steady_malloc


def _fail(message: str, code: int = 1) -> int:
    print(f"civil-words: error: {message}", file=sys.stderr)
    return code


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

    steady_malloc()  # before anything large is allocated
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
