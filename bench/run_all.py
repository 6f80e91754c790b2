"""Every benchmark, one table: `python bench/run_all.py [--smoke]` (or `python -m bench`).

Exits non-zero only if an answer differs from the notebook's (never on a timing).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/...`

from bench import (
    bench_cli,
    bench_constraints,
    bench_http,
    bench_lexicon,
    bench_lexicon_server,
    bench_memory,
    bench_ngram,
    bench_sample,
    bench_scale,
    bench_train,
)
from bench.common import ExactnessError, Result, machine_facts, parse_args, print_table
from bench.servers import start_hello, start_ours


def run(smoke: bool) -> tuple[list[Result], str | None]:
    results: list[Result] = []
    try:
        results += bench_train.run(smoke)
        results += bench_scale.run(smoke)
        results += bench_cli.run(smoke)
        results += bench_ngram.run(smoke)
        results += bench_lexicon.run(smoke)  # in process, before any server
        server, hello = start_ours(), start_hello()
        try:
            results += bench_sample.run(smoke, server)
            results += bench_constraints.run(smoke, server)
            results += bench_http.run(smoke, server, hello)
            results += bench_memory.run(smoke, server, hello)  # after all that traffic
        finally:
            server.stop()
            hello.stop()
        results += bench_memory.run_models(smoke)
        results += bench_lexicon_server.run(smoke)  # its own servers, with and without
    except ExactnessError as e:
        return results, str(e)
    return results, None


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    start = time.monotonic()
    print(
        "civil-words benchmarks"
        + (" (smoke: tiny sizes, timings not judged)" if args.smoke else "")
    )
    for fact in machine_facts():
        print(f"  {fact}")
    results, failure = run(args.smoke)
    print_table(results, f"results ({time.monotonic() - start:.0f} s)")
    if failure is not None:
        print(f"\nEXACTNESS FAILURE: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
