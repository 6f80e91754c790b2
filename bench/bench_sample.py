"""Sampling: our `Sampler` and `GET /sample` against the notebook's sampling loop (cell [42]).

All on the shipped notebook's model, from the same seed, and the words must be the very same.
Three timings, interleaved round by round: the notebook's loop for n words (on the model's W),
`Sampler.sample(n, seed)` in process (the model file made ready by `open_model`, as the server
does), and `GET /sample?n=...&seed=...` against the real server (gunicorn, 2 workers, serving
the shipped models with the notebook's as the default) over loopback, timed from the request
to the last byte of the answer. Then more seeds and word counts, each checked against the
notebook's loop.

--smoke: 50 words instead of 1000, fewer rounds and checks.
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/...`

from bench import notebook
from bench.common import (
    MODEL,
    ExactnessError,
    Result,
    Target,
    exact_main,
    median,
    median_time,
    seconds,
    timed,
)
from bench.servers import start_ours
from service.lm.ready import open_model

SEED = 2147483647
SERVER = Target(25, 25)  # issue 16: the round trip >= 25x the notebook's loop


def _server_time(conn: http.client.HTTPConnection, path: str) -> tuple[float, bytes]:
    def request():
        conn.request("GET", path)
        r = conn.getresponse()
        body.append(r.read())
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body[-1][:200]!r}")

    body: list[bytes] = []
    return timed(request), body[-1]


def run(smoke: bool = False, server=None) -> list[Result]:
    n = 50 if smoke else 1000
    rounds, repeats, cases = (2, 3, 10) if smoke else (5, 7, 100)
    m = open_model(MODEL)  # built once, as the server does at start-up
    sampler = m.sampler
    ns = notebook.sampling_namespace(m.file.W, m.alphabet)
    own = server is None
    server = start_ours() if own else server
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    path = f"/sample?n={n}&seed={SEED}"
    try:
        for _ in range(3):  # warm-up: every worker, the connection
            _server_time(conn, path)
        nb_times, ours_times, server_times = [], [], []
        for _ in range(rounds):
            start = time.perf_counter()
            words = notebook.sample(ns, n, SEED)
            nb_times.append(time.perf_counter() - start)
            ours_times.append(median_time(lambda: sampler.sample(n, SEED), repeats))
            for _ in range(repeats):
                t, body = _server_time(conn, path)
                server_times.append(t)
            if sampler.sample(n, SEED) != words:
                raise ExactnessError(f"Sampler.sample({n}, {SEED}) differs from the notebook")
            answer = json.loads(body)
            if answer["words"] != words or answer["model"] != m.version:
                raise ExactnessError(f"GET {path} differs from the notebook")
        # More seeds and sizes (and the server's own choice of seed), against the notebook.
        rng = random.Random(20261127)
        for _ in range(cases):
            k, seed = rng.randint(1, 40), rng.randrange(2**63)
            if sampler.sample(k, seed) != notebook.sample(ns, k, seed):
                raise ExactnessError(f"Sampler.sample({k}, {seed}) differs from the notebook")
        conn.request("GET", "/sample?n=20")
        answer = json.loads(conn.getresponse().read())
        if answer["words"] != notebook.sample(ns, 20, answer["seed"]):
            raise ExactnessError(f"GET /sample?n=20 (seed {answer['seed']}) differs")
    finally:
        conn.close()
        if own:
            server.stop()
    nb, ours, srv = median(nb_times), median(ours_times), median(server_times)
    return [
        Result(
            f"sample n={n}, in process",
            seconds(ours),
            seconds(nb),
            nb / ours,
            None,
            note=f"Sampler.sample vs cell [42] (W without autograd: its faster case), the same "
            f"{n} words; medians over {rounds} interleaved rounds",
        ),
        Result(
            f"GET /sample?n={n} (server time)",
            seconds(srv),
            seconds(nb),
            nb / srv,
            SERVER,
            judged=not smoke,
            note="the shipped models served (the notebook's the default); request to last byte "
            "over loopback, keep-alive; the same words as the notebook; then "
            f"{cases} more (n, seed) checked against the notebook",
        ),
    ]


def main() -> int:
    return exact_main(__doc__, run, "sampling")


if __name__ == "__main__":
    sys.exit(main())
