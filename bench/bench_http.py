"""HTTP throughput: `GET /sample?n=1` on the real server against a bare Flask app.

Both run under the same gunicorn configuration (service/gunicorn_conf.py: 2 workers, gthread)
and environment, on 127.0.0.1 only. `wrk --latency` loads each in turn for a few seconds,
alternating, and the medians of requests/s and of the latency percentiles are compared.

--smoke: one 1-second round each.
--matrix: also the service under other worker settings (threads per worker, sync workers).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/...`

from bench.common import Result, Target, median, parse_args, print_table
from bench.servers import get, start_gunicorn, start_hello, start_ours

THROUGHPUT = Target(0.6, 0.85)  # the default path must not slow down (issue 10)
CONNECTIONS = 8
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


@dataclass
class Load:
    rps: float
    latency: dict[str, float]  # percentile ("50%", "90%", "99%") -> seconds
    errors: int  # non-2xx answers and socket errors


def wrk(port: int, path: str, seconds: int) -> Load:
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    out = subprocess.run(
        [
            exe,
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {
        p: float(v) * UNITS[u]
        for p, v, u in re.findall(r"^\s+(\d+%)\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    }
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    for counts in re.findall(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(map(int, counts))
    return Load(rps, latency, errors)


def _summary(loads: list[Load]) -> str:
    lat = {p: median([x.latency[p] for x in loads]) * 1e3 for p in ("50%", "90%", "99%")}
    return (
        f"{median([x.rps for x in loads]):.0f} req/s, p50 {lat['50%']:.2f} ms, "
        f"p90 {lat['90%']:.2f} ms, p99 {lat['99%']:.2f} ms"
    )


def compare(
    ours_port: int, hello_port: int, rounds: int, seconds: int
) -> tuple[list[Load], list[Load]]:
    ours, hello = [], []
    for k in range(rounds):  # alternate which side goes first
        pair = [("ours", ours_port, "/sample?n=1"), ("hello", hello_port, "/")]
        for side, port, path in pair if k % 2 == 0 else pair[::-1]:
            (ours if side == "ours" else hello).append(wrk(port, path, seconds))
    return ours, hello


def run(smoke: bool = False, server=None, hello=None) -> list[Result]:
    rounds, secs = (1, 1) if smoke else (4, 5)
    own_server, own_hello = server is None, hello is None
    server = start_ours() if own_server else server
    hello = start_hello() if own_hello else hello
    try:
        for _ in range(20):  # warm-up
            get(server.port, "/sample?n=1")
            get(hello.port, "/")
        ours, base = compare(server.port, hello.port, rounds, secs)
    finally:
        if own_server:
            server.stop()
        if own_hello:
            hello.stop()
    errors = sum(x.errors for x in ours + base)
    ratio = median([x.rps for x in ours]) / median([x.rps for x in base])
    return [
        Result(
            "GET /sample?n=1 throughput",
            _summary(ours),
            "hello: " + _summary(base),
            ratio,
            THROUGHPUT,
            judged=not smoke,
            note=f"wrk -t2 -c{CONNECTIONS} -d{secs}s --latency, {rounds} alternating rounds, "
            f"medians; 2 workers, gthread, same gunicorn config; errors: {errors}",
        )
    ]


def matrix(seconds: int = 5) -> None:
    """The service under other worker settings, each against the bare app under the same."""
    settings = [
        ("gthread, THREADS=1", (), {"THREADS": "1"}),
        ("gthread, THREADS=2 (default)", (), {"THREADS": "2"}),
        ("gthread, THREADS=4", (), {"THREADS": "4"}),
        ("sync", ("-k", "sync"), {}),
    ]
    results = []
    for name, args, env in settings:
        ours = start_gunicorn("service.web.app:create_app()", "/readyz", *args, **env)
        hello = start_gunicorn("bench.hello_app:app", "/", *args, **env)
        try:
            for _ in range(20):
                get(ours.port, "/sample?n=1")
                get(hello.port, "/")
            o, h = compare(ours.port, hello.port, 2, seconds)
        finally:
            ours.stop()
            hello.stop()
        ratio = median([x.rps for x in o]) / median([x.rps for x in h])
        results.append(Result(name, _summary(o), "hello: " + _summary(h), ratio, THROUGHPUT))
    print_table(
        results, "GET /sample?n=1 by worker settings (gunicorn -c service.server.gunicorn_conf)"
    )


def main() -> int:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: p.add_argument(
            "--matrix", action="store_true", help="also compare worker settings (slow)"
        ),
    )
    print_table(run(args.smoke), "HTTP throughput")
    if args.matrix:
        matrix(1 if args.smoke else 5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
