"""Servers to measure: the real one (`civil-words serve`) and others under the same gunicorn
configuration (the bare Flask app, or the service with other worker settings), and the models
they serve: the shipped ones (model_store/), copies of them without a lexicon, and a
Kneser–Ney order-5 model trained on the corpus by `civil-words train`, once per run."""

from __future__ import annotations

import atexit
import functools
import http.client
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import CORPUS, DEFAULT_MODEL, MODEL, ROOT, SHIPPED, civil_words, run_measured
from tests.server import Server, free_port, start_server

ORDER5 = "kn5"  # the order-5 model's name on the server (`model=kn5`)
# For servers compared with and without a lexicon: each model's own lexicon (wordfreq's list for
# a model trained with --language, none without), whatever LEXICON_PATH the environment sets.
NO_LEXICON = {"LEXICON_PATH": ""}


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


def without_language(src: Path, dst: Path) -> None:
    """A copy of a model file whose metadata `config` has no "language": the same model without
    a lexicon (SPEC section 8), as a file written before `train --language` would be. The
    version hashes the tensors and the alphabet, not the config, so the copy stays valid; only
    the safetensors header changes (its JSON, padded with spaces to 8 bytes as the writer does;
    tensor offsets count from the header's end)."""
    data = src.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header["__metadata__"]
    config = json.loads(meta["config"])
    config.pop("language", None)
    meta["config"] = json.dumps(config)
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    dst.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


@functools.cache
def unlexiconed_models() -> Path:
    """A directory of the shipped models without their lexicon (`without_language`)."""
    d = _temp_dir()
    for f in SHIPPED.glob("*.safetensors"):
        without_language(f, d / f.name)
    return d


def start_ours(workers: int = 2, **env: str) -> Server:
    """`civil-words serve` on the shipped models (the notebook's the default) and the order-5
    model (`model=kn5`), on a free port, ready."""
    return start_server(served_models(), workers=workers, DEFAULT_MODEL=DEFAULT_MODEL, **env)


def start_shipped(workers: int = 2, **env: str) -> Server:
    """`civil-words serve` on model_store/ as `make serve` serves it, ready."""
    return start_server(SHIPPED, workers=workers, DEFAULT_MODEL=DEFAULT_MODEL, **env)


def start_unlexiconed(workers: int = 2, **env: str) -> Server:
    """`civil-words serve` on the shipped models without a lexicon (`unlexiconed_models`), as
    `make serve` would serve them, ready."""
    return start_server(unlexiconed_models(), workers=workers, DEFAULT_MODEL=DEFAULT_MODEL, **env)


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


def request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None):
    """(seconds from request to last byte, status, the answer's JSON); `body` is sent as JSON,
    encoded before the clock starts."""
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {} if data is None else {"Content-Type": "application/json"}
    for attempt in (1, 2):
        start = time.perf_counter()
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed an idle keep-alive connection (KEEPALIVE seconds): once more,
            # on a new one.
            conn.close()
            if attempt == 2:
                raise
            continue
        return time.perf_counter() - start, r.status, json.loads(raw)
    raise AssertionError("unreachable")


def ok(answer: tuple[float, int, dict], what: str) -> tuple[float, dict]:
    """`request`'s answer without its status, which must be 200 (else a RuntimeError)."""
    t, status, body = answer
    if status != 200:
        raise RuntimeError(f"{what}: {status} {str(body)[:300]}")
    return t, body
