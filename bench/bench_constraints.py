"""Constraints, longer contexts and scores on the real server (gunicorn, 2 workers), each
against its baseline.

The server serves the shipped models (the notebook's, the default) and a Kneser–Ney order-5
model trained on the corpus (`model=kn5`, bench/servers.py). Server times are from request to
last byte over loopback, every request below interleaved with the others:

- `GET /sample?n=1000&min_len=8&max_len=8&novel=true` (exact conditioning on the length, whole
  words rejected for novelty) against the plain `GET /sample?n=1000`, on the notebook's model;
  the constrained words must be the in-process `ConstrainedSampler`'s and meet the constraints.
- The same two requests on the order-5 model (`&model=kn5`) against the bigram model's time
  for the very same request (issue 16: at most 2x). The plain words must be the reference
  loop's (cell [42]'s loop on the model's states: `torch.multinomial` on the state's row), the
  constrained ones the in-process sampler's, meeting the constraints.
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
from bench.servers import ORDER5, order5_model, start_ours
from service.lm.constrained import Constraints
from service.lm.ready import open_model

SEED = 2147483647
CONSTRAINED = Target(10, 3, higher=False)  # constrained / plain server time
ORDER5_VS_BIGRAM = Target(2, 1.2, higher=False)  # order 5 / bigram, the same request (issue 16)
SCORE = Target(20, 100)  # notebook / ours
CONSTRAINTS = "min_len=8&max_len=8&novel=true"


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


def _check_constrained(path: str, got: list[str], expected: list[str], training: set[str]):
    if got != expected:
        raise ExactnessError(f"GET {path} differs from the in-process sampler")
    if any(len(w) != 8 or w in training for w in got):
        raise ExactnessError(f"GET {path}: a word breaks the constraints")


def run(smoke: bool = False, server=None) -> list[Result]:
    n = 50 if smoke else 1000
    rounds, repeats = (2, 2) if smoke else (5, 7)
    m = open_model(MODEL)
    m5 = open_model(order5_model().path)
    c = Constraints(min_len=8, max_len=8, novel=True)
    plain = f"/sample?n={n}&seed={SEED}"
    paths = {
        "plain": plain,
        "constrained": f"{plain}&{CONSTRAINTS}",
        "plain5": f"{plain}&model={ORDER5}",
        "constrained5": f"{plain}&{CONSTRAINTS}&model={ORDER5}",
    }
    words = list(m.file.words[::7])[:n]
    body = json.dumps({"words": words}, ensure_ascii=False).encode("utf-8")
    own = server is None
    server = start_ours() if own else server
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        for _ in range(3):  # warm-up: every worker, the connection
            for path in paths.values():
                _call(conn, "GET", path)
            _call(conn, "POST", "/score", body)
        times: dict[str, list[float]] = {k: [] for k in [*paths, "score", "notebook"]}
        answers: dict[str, dict] = {}
        for r in range(rounds):
            for _ in range(repeats):
                order = list(paths)
                order = order[r % len(order) :] + order[: r % len(order)]  # each first in turn
                for k in order:
                    t, answers[k] = _call(conn, "GET", paths[k])
                    times[k].append(t)
                t, scores = _call(conn, "POST", "/score", body)
                times["score"].append(t)
            start = time.perf_counter()
            expected = notebook.score(m.file.W, m.alphabet, words)
            times["notebook"].append(time.perf_counter() - start)
        _check_constrained(
            paths["constrained"],
            answers["constrained"]["words"],
            m.constrained.sample(n, SEED, c).words,
            set(m.file.words),
        )
        _check_constrained(
            paths["constrained5"],
            answers["constrained5"]["words"],
            m5.constrained.sample(n, SEED, c).words,
            set(m5.file.words),
        )
        loop5 = notebook.state_loop(m5.lm, n, SEED)
        if answers["plain5"]["words"] != loop5 or m5.sampler.sample(n, SEED) != loop5:
            raise ExactnessError(f"GET {paths['plain5']} differs from the reference loop")
        if answers["plain5"]["model"] != m5.version or answers["plain"]["model"] != m.version:
            raise ExactnessError("the server answered from another model than asked")
        ours = [s["logprob"] for s in scores["scores"]]
        worst = max(abs(a - b) for a, b in zip(ours, expected, strict=True))
        if worst > 1e-4:
            raise ExactnessError(f"POST /score differs from the notebook's code by {worst:.2e}")
    finally:
        conn.close()
        if own:
            server.stop()
    t = {k: median(v) for k, v in times.items()}
    count = rounds * repeats
    return [
        Result(
            f"GET /sample?n={n}&{CONSTRAINTS} (server time)",
            seconds(t["constrained"]),
            f"plain n={n}: {seconds(t['plain'])}",
            t["constrained"] / t["plain"],
            CONSTRAINED,
            judged=not smoke,
            note=f"notebook's model, constrained / plain, medians of {count} interleaved "
            "requests; the words are the in-process sampler's, 8 symbols, none a training word",
        ),
        Result(
            f"GET /sample?n={n}, order 5 (KN) vs bigram",
            seconds(t["plain5"]),
            f"bigram: {seconds(t['plain'])}",
            t["plain5"] / t["plain"],
            ORDER5_VS_BIGRAM,
            judged=not smoke,
            note=f"`model={ORDER5}` (Kneser-Ney order 5 on the corpus, {m5.lm.S:,} states) / the "
            f"notebook's model, the same request; medians of {count} interleaved requests; the "
            "words are the reference loop's (torch.multinomial on the state's row)",
        ),
        Result(
            f"GET /sample?n={n}&{CONSTRAINTS}, order 5 vs bigram",
            seconds(t["constrained5"]),
            f"bigram: {seconds(t['constrained'])}",
            t["constrained5"] / t["constrained"],
            ORDER5_VS_BIGRAM,
            judged=not smoke,
            note=f"`model={ORDER5}` / the notebook's model, the same request; medians of {count} "
            "interleaved requests; the words are the in-process sampler's, 8 symbols, none a "
            "training word",
        ),
        Result(
            f"POST /score, {n} words (server time)",
            seconds(t["score"]),
            seconds(t["notebook"]),
            t["notebook"] / t["score"],
            SCORE,
            judged=not smoke,
            note="vs the notebook's per-bigram torch code (one-hot @ W, exp, normalise, log) "
            f"on the same words, medians of {rounds} rounds; log-probabilities agree within "
            f"{worst:.1e}",
        ),
    ]


def main() -> int:
    return exact_main(__doc__, run, "constraints, order 5 and scores")


if __name__ == "__main__":
    sys.exit(main())
