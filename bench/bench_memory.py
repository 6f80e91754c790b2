"""Memory: the whole server's proportional set size (PSS), master and workers.

PSS counts a page shared by k processes as 1/k in each, so the sum over the master and its
workers is the server's real footprint (the workers share what the master loaded before
forking). Read from /proc/PID/smaps_rollup after warm-up requests on every endpoint and every
served model; the bare Flask app under the same gunicorn configuration is shown for comparison.
Against the server of the notebook's model alone: the server of model_store/ as `make serve`
serves it (both shipped models, issue 16: at most 350 MB), and a directory of five models
(copies of the notebook's, each loaded on its own).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/...`

from bench.common import MODEL, Result, Target, parse_args, print_table
from bench.servers import get, start_hello, start_ours, start_shipped
from tests.server import start_server

MEMORY = Target(600, 300, higher=False, unit=" MB")
SHIPPED_MEMORY = Target(350, 300, higher=False, unit=" MB")  # issue 16: both shipped models
# Every endpoint (/prob and /matrix answer 422 on a model of order above 2): first those that
# need no conditioned chain, then those that build one (each worker caches its own chains).
UNCONSTRAINED = [
    "/sample?n=1",
    "/sample?n=1000",
    "/sample?n=37&seed=5",
    "/next?context=con",
    "/prob?bigram=ab",
    "/loss",
    "/model",
    "/matrix",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/",
    "/sample?n=0",
]
CONSTRAINED = [
    "/sample?n=100&min_len=8&max_len=8&novel=true",
    "/sample?n=20&prefix=con&max_len=12",
]
WARM_UP = UNCONSTRAINED + CONSTRAINED


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


def footprint(server) -> tuple[float, list[float]]:
    """Total PSS in MB, and per process (master first)."""
    parts = [pss_kb(pid) / 1024 for pid in [server.proc.pid, *server.worker_pids()]]
    return sum(parts), parts


def served(server) -> list[str]:
    """The names of the models a server serves."""
    status, body = get(server.port, "/models")
    if status != 200:
        raise RuntimeError(f"GET /models: {status}")
    return [m["name"] for m in json.loads(body)["models"]]


def warm_up(server, rounds: int, models: list[str], paths: list[str] = WARM_UP) -> None:
    for _ in range(rounds):
        for name in models:
            for path in paths:
                get(server.port, path + ("&" if "?" in path else "?") + f"model={name}")


def models_footprint(count: int, rounds: int) -> tuple[float, list[float]]:
    """PSS of a server whose MODEL_PATH is a directory of `count` models."""
    d = Path(tempfile.mkdtemp(prefix="civil-words-models-"))
    names = [f"m{k}" for k in range(count)]
    for name in names:
        shutil.copyfile(MODEL, d / f"{name}.safetensors")
    server = start_server(d, workers=2, DEFAULT_MODEL=names[0])
    try:
        warm_up(server, rounds, names)
        return footprint(server)
    finally:
        server.stop()
        shutil.rmtree(d)


def run_models(smoke: bool = False) -> list[Result]:
    rounds = 2 if smoke else 10
    one, _ = models_footprint(1, rounds)
    server = start_shipped()
    try:
        names = served(server)
        at_start, _ = footprint(server)
        warm_up(server, rounds, names, UNCONSTRAINED)
        unconstrained, _ = footprint(server)
        warm_up(server, rounds, names, CONSTRAINED)
        shipped, shipped_parts = footprint(server)
    finally:
        server.stop()
    five, parts = models_footprint(5, rounds)
    return [
        Result(
            "server memory, shipped models (PSS, master + 2 workers)",
            f"{shipped:.0f} MB",
            f"notebook's model alone: {one:.0f} MB",
            shipped,
            SHIPPED_MEMORY,
            note=f"model_store/ ({', '.join(names)}) as `make serve` serves it: {at_start:.0f} MB "
            f"at start; {unconstrained:.0f} MB after {rounds} rounds of {len(UNCONSTRAINED)} "
            f"unconstrained requests on each model; {shipped:.0f} MB after {rounds} rounds of "
            f"{len(CONSTRAINED)} constrained ones too (each worker caches its conditioned "
            f"chains), per process (master first) {_shown(shipped_parts)} MB",
        ),
        Result(
            "server memory, 5 models (PSS, master + 2 workers)",
            f"{five:.0f} MB",
            f"1 model: {one:.0f} MB",
            five,
            MEMORY,
            note=f"{(five - one) / 4:.1f} MB per extra model; per process (master first): "
            f"{_shown(parts)} MB",
        ),
    ]


def _shown(parts: list[float]) -> str:
    return ", ".join(f"{x:.0f}" for x in parts)


def run(smoke: bool = False, server=None, hello=None) -> list[Result]:
    rounds = 3 if smoke else 30
    own_server, own_hello = server is None, hello is None
    server = start_ours() if own_server else server
    hello = start_hello() if own_hello else hello
    try:
        names = served(server)
        for _ in range(rounds):
            warm_up(server, 1, names)
            get(hello.port, "/")
        ours, ours_parts = footprint(server)
        base, _ = footprint(hello)
    finally:
        if own_server:
            server.stop()
        if own_hello:
            hello.stop()
    return [
        Result(
            "server memory (PSS, master + 2 workers)",
            f"{ours:.0f} MB",
            f"hello: {base:.0f} MB",
            ours,
            MEMORY,
            note=f"the benchmarks' server ({', '.join(names)}); per process (master first): "
            f"{_shown(ours_parts)} MB; after {rounds} warm-up rounds of {len(WARM_UP)} "
            "requests on each model (and all the benchmarks' traffic before, in a full run)",
        )
    ]


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    print_table(run(args.smoke) + run_models(args.smoke), "memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
