"""Hostile or broken model files, and bad settings, given to `civil-words serve`.

Each must be refused at start-up: a non-zero exit, a message that names the file (or the
setting) and the reason, no Python traceback, and no gunicorn worker ever started. The files are
made from a valid model as tests/test_store.py makes them; here they go through the real
command, the way an operator would meet them (MODEL_PATH).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from service.lm.methods import Neural
from service.lm.model import TrainConfig
from service.lm.store import load_model
from service.lm.train import train_to_file
from tests.conftest import ROOT, SHIPPED_MODEL
from tests.server import free_port, start_server
from tests.test_limits import word_list

START_TIMEOUT = 60  # a refused start takes ~2 s (importing torch); a started server never ends
WORKER_SIGNS = ("Booting worker", "Listening at")  # what gunicorn logs once it is serving


@dataclass
class Run:
    returncode: int | None  # None: still running after START_TIMEOUT (it was served!)
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def serve(env: dict[str, str]) -> Run:
    """Run `civil-words serve` with `env` on top of a clean test environment until it exits."""
    tmp = tempfile.mkdtemp(prefix="civil-words-hostile-")
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": f"{tmp}/metrics",
        **env,
    }
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group: a server that did start is stopped whole
    )
    try:
        out, err = proc.communicate(timeout=START_TIMEOUT)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    return Run(code, out, err, time.perf_counter() - t)


# --- the files ------------------------------------------------------------------------------


def _tensors_and_meta(good: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(good), framework="pt") as f:
        return {k: f.get_tensor(k).clone() for k in f.keys()}, dict(f.metadata())


def rewritten(mutate):
    """A maker that saves the good model's tensors and metadata after `mutate(tensors, meta)`."""

    def make(good: Path, path: Path, marker: Path) -> None:
        tensors, meta = _tensors_and_meta(good)
        mutate(tensors, meta)
        save_file(tensors, str(path), metadata=meta)

    return make


def _set(key: str, fn):
    def mutate(tensors, meta):
        if key in tensors:
            tensors[key] = fn(tensors[key]).contiguous()
        else:
            meta[key] = fn(meta[key])

    return mutate


def _nan_and_inf(W):
    W = W.clone()
    W[1, 1], W[2, 0] = float("nan"), float("inf")
    return W


def _drop_last_symbol(alphabet: str) -> str:
    return json.dumps(json.loads(alphabet)[:-1], ensure_ascii=False)


def _truncated(good, path, marker):
    path.write_bytes(good.read_bytes()[:-64])


def _not_safetensors(good, path, marker):
    path.write_text("W = [[0.1, 0.2], [0.3, 0.4]]\n", encoding="utf-8")


class _Exploit:
    """Unpickling this runs `touch marker`: a model loader that unpickles would create it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickle(good, path, marker):
    path.write_bytes(pickle.dumps({"W": _Exploit(marker)}))


def _huge_header(good, path, marker):
    path.write_bytes(struct.pack("<Q", 1 << 40) + b'{"W": {}}' + b"\0" * 64)


def _directory(good, path, marker):
    path.mkdir()


def _missing(good, path, marker):
    pass


# name, maker, a phrase the message must hold
HOSTILE = [
    ("truncated", _truncated, "safetensors"),
    ("not-safetensors", _not_safetensors, "not a safetensors"),
    ("pickle", _pickle, "not a safetensors"),
    ("wrong-shape", rewritten(_set("W", lambda W: W[:, :-1])), "wrong shape"),
    ("wrong-dtype", rewritten(_set("W", lambda W: W.double())), "wrong dtype"),
    ("nan-and-inf-in-W", rewritten(_set("W", _nan_and_inf)), "NaN or infinite"),
    ("alphabet-shorter-than-W", rewritten(_set("alphabet", _drop_last_symbol)), "wrong shape"),
    ("huge-header", _huge_header, "header size"),
    ("missing", _missing, "no such file"),
    # A directory is a set of models (MODEL_PATH may name one): this one holds none.
    ("directory", _directory, "holds no model file"),
    # Metadata that the file checks let through but the service needs in another shape.
    ("config-not-an-object", rewritten(_set("config", lambda v: '"600 steps"')), "config"),
    ("corpus-sha256-a-number", rewritten(_set("corpus_sha256", lambda v: "12")), "sha256"),
]

# Settings are all checked before anything starts, and all named at once.
BAD_SETTINGS = [
    {"PORT": "abc"},
    {"WEB_CONCURRENCY": "0"},
    {
        "PORT": "70000",
        "WEB_CONCURRENCY": "two",
        "THREADS": "0",
        "MAX_N": "0",
        "MAX_WORD_LEN": "-1",
        "TIMEOUT": "0",
        "LOG_LEVEL": "loud",
    },
]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.safetensors"
    words = ["maison", "loi", "code", "civil", "article", "juge", "époux", "bien"]
    train_to_file(word_list(words), path, Neural(TrainConfig(steps=20)))
    return path


@pytest.fixture(scope="module")
def hostile_runs(good, tmp_path_factory) -> dict[str, tuple[Path, Path, Run]]:
    """Every hostile file, served once; the starts run side by side (each is mostly torch's
    import) to keep the module's wall time down."""
    d = tmp_path_factory.mktemp("hostile")
    cases = {}
    for name, make, _ in HOSTILE:
        path, marker = d / f"{name}.safetensors", d / f"{name}.pwned"
        make(good, path, marker)
        cases[name] = (path, marker)
    assert not any(marker.exists() for _, marker in cases.values())  # made, not run
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        runs = dict(
            zip(
                cases,
                pool.map(lambda c: serve({"MODEL_PATH": str(c[0])}), cases.values()),
                strict=True,
            )
        )
    return {name: (*cases[name], runs[name]) for name in cases}


def assert_refused(run: Run, names: str, reason: str) -> None:
    assert run.returncode is not None, f"it was served:\n{run.output[-2000:]}"
    assert run.returncode != 0, run.output
    assert "Traceback" not in run.output, run.output[-3000:]
    for sign in WORKER_SIGNS:
        assert sign not in run.output, f"a worker started: {run.output[-2000:]}"
    assert names in run.stderr, run.output
    assert reason in run.stderr, run.output
    assert "civil-words: error:" in run.stderr


@pytest.mark.parametrize(
    ("name", "reason"), [(h[0], h[2]) for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_model_is_refused_at_start(hostile_runs, name, reason):
    path, marker, run = hostile_runs[name]
    assert_refused(run, str(path), reason)
    assert not marker.exists(), "the file's code was run"


def test_the_good_model_is_served(good):
    """The control: the file they were all made from starts, through the same command."""
    server = start_server(good, workers=2)
    try:
        assert server.get("/readyz").status_code == 200
        assert server.get("/model").json()["version"] == load_model(good).version
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("env", BAD_SETTINGS, ids=["PORT", "WEB_CONCURRENCY", "all-the-rest"])
def test_bad_settings_are_refused(env):
    run = serve({"MODEL_PATH": str(SHIPPED_MODEL), **env})
    assert_refused(run, "bad setting", "bad setting")
    assert run.returncode == 2
    for name in env:
        assert f"{name}:" in run.stderr, run.stderr
