"""Memory: the whole server's proportional set size (PSS), master and workers.

PSS counts a page shared by k processes as 1/k in each, so the sum over the master and its
workers is the server's real footprint (the workers share what the master loaded before
forking). Read from /proc/PID/smaps_rollup after warm-up requests on every endpoint; the bare
Flask app under the same gunicorn configuration is shown for comparison, and the server with a
directory of five models against the same server with one (copies of the shipped model, each
loaded on its own).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/...`

from bench.common import MODEL, Result, Target, parse_args, print_table
from bench.servers import get, start_hello, start_ours
from tests.server import start_server

MEMORY = Target(600, 300, higher=False, unit=" MB")
WARM_UP = [
    "/sample?n=1",
    "/sample?n=1000",
    "/sample?n=37&seed=5",
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


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


def footprint(server) -> tuple[float, list[float]]:
    """Total PSS in MB, and per process (master first)."""
    parts = [pss_kb(pid) / 1024 for pid in [server.proc.pid, *server.worker_pids()]]
    return sum(parts), parts


def warm_up(server, rounds: int, models: list[str]) -> None:
    for _ in range(rounds):
        for name in models:
            for path in WARM_UP:
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
    five, parts = models_footprint(5, rounds)
    shown = ", ".join(f"{x:.0f}" for x in parts)
    return [
        Result(
            "server memory, 5 models (PSS, master + 2 workers)",
            f"{five:.0f} MB",
            f"1 model: {one:.0f} MB",
            five,
            MEMORY,
            note=f"{(five - one) / 4:.1f} MB per extra model; per process (master first): "
            f"{shown} MB",
        )
    ]


def run(smoke: bool = False, server=None, hello=None) -> list[Result]:
    rounds = 3 if smoke else 30
    own_server, own_hello = server is None, hello is None
    server = start_ours() if own_server else server
    hello = start_hello() if own_hello else hello
    try:
        for _ in range(rounds):
            for path in WARM_UP:
                get(server.port, path)
            get(hello.port, "/")
        ours, ours_parts = footprint(server)
        base, _ = footprint(hello)
    finally:
        if own_server:
            server.stop()
        if own_hello:
            hello.stop()
    shown = ", ".join(f"{x:.0f}" for x in ours_parts)
    return [
        Result(
            "server memory (PSS, master + 2 workers)",
            f"{ours:.0f} MB",
            f"hello: {base:.0f} MB",
            ours,
            MEMORY,
            note=f"per process (master first): {shown} MB; after {rounds} warm-up rounds of "
            f"{len(WARM_UP)} requests",
        )
    ]


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    print_table(run(args.smoke) + run_models(args.smoke), "memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
