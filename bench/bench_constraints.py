"""Constraints and scores on the real server (gunicorn, 2 workers), each against its baseline.

- `GET /sample?n=1000&min_len=8&max_len=8&novel=true` (exact conditioning on the length, whole
  words rejected for novelty) against the plain `GET /sample?n=1000`, both as server time
  (request to last byte over loopback), interleaved; the constrained words must be the
  in-process `ConstrainedSampler`'s and meet the constraints.
- `POST /score` with 1000 words against the notebook's per-bigram torch code scoring the same
  words (bench/notebook.py `score`); the log-probabilities must agree within 1e-4.

--smoke: 50 words, fewer rounds.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/...`

from bench import notebook
from bench.common import MODEL, ExactnessError, Result, Target, exact_main, median, seconds
from bench.servers import start_ours
from service.lm.constrained import ConstrainedSampler, Constraints
from service.lm.model import Sampler, probabilities
from service.lm.store import load_model

SEED = 2147483647
CONSTRAINED = Target(10, 3, higher=False)  # constrained / plain server time
SCORE = Target(20, 100)  # notebook / ours


def _call(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None):
    """(seconds from request to last byte, the answer's JSON)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    start = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    elapsed = time.perf_counter() - start
    if r.status != 200:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
    return elapsed, json.loads(data)


def run(smoke: bool = False, server=None) -> list[Result]:
    n = 50 if smoke else 1000
    rounds, repeats = (2, 2) if smoke else (5, 7)
    m = load_model(MODEL)
    P, logP = probabilities(m.W, m.counts, m.method, m.config["smoothing"])
    local = ConstrainedSampler(Sampler(P, m.alphabet), logP, m.words)
    c = Constraints(min_len=8, max_len=8, novel=True)
    constrained = f"/sample?n={n}&seed={SEED}&min_len=8&max_len=8&novel=true"
    plain = f"/sample?n={n}&seed={SEED}"
    words = list(m.words[::7])[:n]
    body = json.dumps({"words": words}, ensure_ascii=False).encode("utf-8")
    own = server is None
    server = start_ours() if own else server
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        for _ in range(3):  # warm-up: every worker, the connection
            _call(conn, "GET", constrained)
            _call(conn, "GET", plain)
            _call(conn, "POST", "/score", body)
        t_plain, t_constrained, t_score, t_nb = [], [], [], []
        for _ in range(rounds):
            for _ in range(repeats):
                t, answer = _call(conn, "GET", constrained)
                t_constrained.append(t)
                t_plain.append(_call(conn, "GET", plain)[0])
                t, scores = _call(conn, "POST", "/score", body)
                t_score.append(t)
            start = time.perf_counter()
            expected = notebook.score(m.W, m.alphabet, words)
            t_nb.append(time.perf_counter() - start)
        got = answer["words"]
        if got != local.sample(n, SEED, c).words:
            raise ExactnessError(f"GET {constrained} differs from the in-process sampler")
        training = set(m.words)
        if any(len(w) != 8 or w in training for w in got):
            raise ExactnessError(f"GET {constrained}: a word breaks the constraints")
        ours = [s["logprob"] for s in scores["scores"]]
        worst = max(abs(a - b) for a, b in zip(ours, expected, strict=True))
        if worst > 1e-4:
            raise ExactnessError(f"POST /score differs from the notebook's code by {worst:.2e}")
    finally:
        conn.close()
        if own:
            server.stop()
    tc, tp, ts, tn = median(t_constrained), median(t_plain), median(t_score), median(t_nb)
    return [
        Result(
            f"GET /sample?n={n}&min_len=8&max_len=8&novel=true (server time)",
            seconds(tc),
            f"plain n={n}: {seconds(tp)}",
            tc / tp,
            CONSTRAINED,
            judged=not smoke,
            note=f"constrained / plain, medians of {rounds * repeats} interleaved requests; "
            "the words are the in-process sampler's, 8 symbols, none a training word",
        ),
        Result(
            f"POST /score, {n} words (server time)",
            seconds(ts),
            seconds(tn),
            tn / ts,
            SCORE,
            judged=not smoke,
            note="vs the notebook's per-bigram torch code (one-hot @ W, exp, normalise, log) "
            f"on the same words, medians of {rounds} rounds; log-probabilities agree within "
            f"{worst:.1e}",
        ),
    ]


def main() -> int:
    return exact_main(__doc__, run, "constraints and scores")


if __name__ == "__main__":
    sys.exit(main())
