"""Servers to measure: the real one (`civil-words serve`) and others under the same gunicorn
configuration (the bare Flask app, or the service with other worker settings)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import MODEL, ROOT
from tests.server import Server, free_port, start_server


def start_ours(workers: int = 2, **env: str) -> Server:
    """`civil-words serve` on the shipped model, on a free port, ready."""
    return start_server(MODEL, workers=workers, **env)


def start_gunicorn(app: str, ready_path: str, *args: str, workers: int = 2, **env: str) -> Server:
    """`gunicorn -c python:service.server.gunicorn_conf [args] app`, with the environment the real
    server gets (HOST, PORT, WEB_CONCURRENCY, PROMETHEUS_MULTIPROC_DIR), ready."""
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="civil-words-bench-"))
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
