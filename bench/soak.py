"""Soak test: the real server under wrk at saturation for minutes; memory must level off.

Starts `civil-words serve` (gunicorn, 2 workers) on a free port of 127.0.0.1, warms it up,
then runs wrk (2 threads, 32 connections, the mix of tests/test_load.py) in slices, and after
each slice reads the PSS of the master and its workers from /proc/PID/smaps_rollup: all of it,
and its anonymous part (heaps, tensors, Python objects: what a leak grows; the file-backed
part is shared with whatever else maps torch's libraries on the machine, and moves with it).

The anonymous PSS rises once in the first minutes (workers copy the preloaded master's pages
as they touch them, threads get their own malloc arenas) and must then stay flat: the run
fails if it grows by more than --max-growth over the second half of the run, or if any request
fails, or if a worker is restarted. Prints one row per slice and a summary.

    .venv/bin/python bench/soak.py                          # 5 minutes, 30 s slices
    .venv/bin/python bench/soak.py --minutes 1 --slice 10   # a smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import start_server  # noqa: E402
from tests.test_load import (  # noqa: E402
    CONNECTIONS,
    MIX,
    THREADS,
    memory,
    mix_script,
    requests_counted,
    run_wrk,
)

MIB = 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0, help="length of the run (default 5)")
    p.add_argument("--slice", type=float, default=30.0, help="seconds per wrk run (default 30)")
    p.add_argument(
        "--model",
        type=Path,
        default=ROOT / "model_store" / "civil-words.safetensors",
        help="model file to serve (default: the shipped model)",
    )
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument(
        "--max-growth",
        type=float,
        default=0.05,
        help="largest growth of the anonymous PSS over the second half of the run (default 0.05)",
    )
    args = p.parse_args(argv)

    script = mix_script()
    shown = ", ".join(p if isinstance(p, str) else "POST " + p[0] for p in MIX)
    server = start_server(args.model, workers=args.workers)
    try:
        print(
            f"civil-words soak: {server.url}, {args.workers} workers, "
            f"wrk -t{THREADS} -c{CONNECTIONS}, mix {shown}"
        )
        run_wrk(server.url, seconds=5, script=script)  # warm-up, not counted
        workers = server.worker_pids()
        counted0 = requests_counted(server)
        mem = [memory(server)]
        print(
            f"{'slice':>5} {'requests':>10} {'req/s':>8} {'non-2xx':>8} {'sock err':>8} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'PSS MiB':>8} {'anon MiB':>8}"
        )
        print(f"{'start':>5}{'':>65} {mem[0][0] / MIB:>8.1f} {mem[0][1] / MIB:>8.1f}")
        total = non_2xx = errors = 0
        slices = max(2, round(args.minutes * 60 / args.slice))
        started = time.monotonic()
        p99 = []
        for k in range(1, slices + 1):
            r = run_wrk(server.url, seconds=args.slice, script=script)
            mem.append(memory(server))
            total, non_2xx, errors = total + r.requests, non_2xx + r.non_2xx, errors + r.errors
            lat = r.latency_ms
            p99.append(lat.get("99%", 0.0))
            print(
                f"{k:>5} {r.requests:>10,} {r.rps:>8,.0f} {r.non_2xx:>8} {r.errors:>8} "
                f"{lat.get('50%', 0):>8.1f} {lat.get('99%', 0):>8.1f} {lat.get('max', 0):>8.1f} "
                f"{mem[-1][0] / MIB:>8.1f} {mem[-1][1] / MIB:>8.1f}"
            )
        seconds = time.monotonic() - started
        counted = requests_counted(server) - counted0
        restarted = server.worker_pids() != workers
    finally:
        server.stop()
    (pss0, anon0), (pss1, anon1) = mem[0], mem[-1]
    anon_half = mem[len(mem) // 2][1]
    late_growth = anon1 / anon_half - 1
    print(
        f"\n{total:,} requests in {seconds:.0f} s ({total / seconds:,.0f} req/s), "
        f"non-2xx {non_2xx}, socket errors {errors}; server counted {counted:,}; "
        f"worst slice p99 {max(p99):.1f} ms\n"
        f"PSS master+workers: start {pss0 / MIB:.1f} MiB, end {pss1 / MIB:.1f} MiB; "
        f"anonymous: start {anon0 / MIB:.1f} MiB, end {anon1 / MIB:.1f} MiB "
        f"({anon1 / anon0 - 1:+.1%}), over the second half {late_growth:+.1%}"
        + ("; WORKERS WERE RESTARTED" if restarted else "")
    )
    ok = non_2xx == 0 and errors == 0 and late_growth <= args.max_growth and not restarted
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
