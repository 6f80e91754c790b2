"""Servers to measure: the real one (`civil-words serve`) and others under the same gunicorn
configuration (the bare Flask app, or the service with other worker settings), and the models
they serve: the shipped ones (model_store/) and a Kneser–Ney order-5 model trained on the
corpus by `civil-words train`, once per run."""

from __future__ import annotations

import atexit
import functools
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import CORPUS, DEFAULT_MODEL, MODEL, ROOT, SHIPPED, civil_words, run_measured
from tests.server import Server, free_port, start_server

ORDER5 = "kn5"  # the order-5 model's name on the server (`model=kn5`)


def order5_command(words: Path, out: Path) -> list[str]:
    """`civil-words train` of a Kneser–Ney order-5 model on a word list."""
    return [
        civil_words(),
        "train",
        "--quiet",
        "--method",
        "counts",
        "--order",
        "5",
        "--smoothing",
        "kneser-ney",
        "--words",
        str(words),
        "--out",
        str(out),
    ]


def _temp_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="civil-words-bench-"))
    atexit.register(shutil.rmtree, d, True)
    return d


@dataclass(frozen=True)
class Trained:
    path: Path
    wall: float  # seconds, the whole `civil-words train` process
    rss: float  # its peak RSS, MB


@functools.cache
def order5_model() -> Trained:
    """The Kneser–Ney order-5 model of the corpus, trained once per run (and its cost)."""
    out = _temp_dir() / f"{ORDER5}.safetensors"
    wall, rss = run_measured(order5_command(CORPUS, out))
    return Trained(out, wall, rss)


@functools.cache
def served_models() -> Path:
    """A directory of the shipped models and the order-5 model beside them."""
    d = _temp_dir()
    for f in SHIPPED.glob("*.safetensors"):
        shutil.copyfile(f, d / f.name)
    shutil.copyfile(order5_model().path, d / f"{ORDER5}.safetensors")
    return d


def start_ours(workers: int = 2, **env: str) -> Server:
    """`civil-words serve` on the shipped models (the notebook's the default) and the order-5
    model (`model=kn5`), on a free port, ready."""
    return start_server(served_models(), workers=workers, DEFAULT_MODEL=DEFAULT_MODEL, **env)


def start_shipped(workers: int = 2, **env: str) -> Server:
    """`civil-words serve` on model_store/ as `make serve` serves it, ready."""
    return start_server(SHIPPED, workers=workers, DEFAULT_MODEL=DEFAULT_MODEL, **env)


def start_gunicorn(app: str, ready_path: str, *args: str, workers: int = 2, **env: str) -> Server:
    """`gunicorn -c python:service.server.gunicorn_conf [args] app`, with the environment the real
    server gets (HOST, PORT, WEB_CONCURRENCY, PROMETHEUS_MULTIPROC_DIR), ready."""
    port = free_port()
    tmp = _temp_dir()  # removed at exit
    log, metrics_dir = tmp / "server.log", tmp / "metrics"
    metrics_dir.mkdir()
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "MODEL_PATH": str(MODEL),
        **env,
    }
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:service.server.gunicorn_conf",
        *args,
        app,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc=proc, port=port, log=log, metrics_dir=metrics_dir, env=full_env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{app} exited with {proc.returncode}:\n{server.output()}")
        try:
            if get(port, ready_path)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{app} not ready within 90 s:\n{server.output()}")


def start_hello(workers: int = 2) -> Server:
    return start_gunicorn("bench.hello_app:app", "/", workers=workers)


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()
