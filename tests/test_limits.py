"""Limits: every request the service accepts is bounded in size, time and memory.

n (MAX_N), the query string (1 KiB, the app), the request line and headers (gunicorn), the
length of a word (MAX_WORD_LEN) and so the most expensive valid request: n = MAX_N on a model
whose words never end. Run with `-s` to see the measured time and memory of that request.
"""

from __future__ import annotations

import hashlib
import math
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from service.lm.corpus import WordList
from service.lm.methods import Neural
from service.lm.model import TrainConfig, probability_table
from service.lm.ready import open_model
from service.lm.store import load_model, save_model
from service.lm.train import train_to_file
from service.settings import Settings
from tests.server import Server, start_server, wait_ready

PROBLEM_JSON = "application/problem+json"
MAX_N = Settings().max_n
MAX_WORD_LEN = Settings().max_word_len
TIMEOUT = Settings().timeout
# Generous sanity bounds for the most expensive request (measured here: 0.1-0.2 s, and a worker
# peak of 3-60 MiB over its idle size with two such requests at once); they catch an
# order-of-magnitude regression, they are not a benchmark.
EXPENSIVE_PEAK_MIB = 128
# The random draws of one request, held at once: a request must never ask for more than this,
# whatever the model (64 MiB of float32).
MAX_DRAW_VALUES = 16 * 2**20


def word_list(words: list[str]) -> WordList:
    """A training word list held in memory, as `read_words` would return it."""
    data = "".join(w + "\n" for w in words).encode("utf-8")
    return WordList(words=words, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def write_model(path: Path, letters: str, p_end: float) -> Path:
    """A valid model file over `letters` where every letter is equally likely to follow any
    symbol, and the end marker '.' has probability `p_end` (0: a word never ends by itself)."""
    train_to_file(word_list([letters, letters[::-1]]), path, Neural(TrainConfig(steps=0)))
    m = load_model(path)
    V = len(m.alphabet)
    W = torch.zeros((V, V))
    # P('.') = e^w / (e^w + V - 1); exp(-1e4) is exactly 0 in float32.
    W[:, 0] = -1e4 if p_end == 0 else math.log(p_end * (V - 1) / (1 - p_end))
    save_model(path, W, m.counts, m.alphabet, dict(m.metadata), m.words)
    return path


def start_ready(model: Path, timeout: float = 30, **env: str) -> Server:
    """A server of our own that must be ready within `timeout` seconds (fail fast, not 90 s)."""
    server = start_server(model, workers=2, wait=False, **env)
    wait_ready(server, timeout)
    return server


def workers_of(server: Server, count: int = 2, timeout: float = 10) -> list[int]:
    """The worker pids, once all `count` are forked (ready means one answers, not all)."""
    deadline = time.monotonic() + timeout
    while (pids := server.worker_pids()) and len(pids) != count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(pids) == count, f"{len(pids)} workers, expected {count}"
    return pids


def raw_request(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes and read until the server closes (for what `requests` will not send)."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    return out


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def headers_of(raw: bytes) -> dict[str, str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head)}


def assert_problem(r, status: int, parameter: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith(PROBLEM_JSON)
    body = r.json()
    assert body["status"] == status and body["title"]
    if parameter is not None:
        assert [e["parameter"] for e in body["errors"]] == [parameter], body
    return body


def peak_rss_kib(pid: int) -> int:
    """VmHWM: the most resident memory the process ever held."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("limit-models")
    return {
        # Exactly 0.5 / 0.5 / 0: no word ever ends before MAX_WORD_LEN.
        "endless": write_model(d / "endless.safetensors", "ab", 0.0),
        # '.' is possible but rare: the mean word is 10,000 symbols, cut at MAX_WORD_LEN.
        "long": write_model(d / "long.safetensors", "abcdefgh", 1e-4),
        # '.' underflows to 0 but the chain is not exactly absorbing-free in float64.
        "endless-8": write_model(d / "endless-8.safetensors", "abcdefgh", 0.0),
    }


@pytest.fixture(scope="module")
def endless_server(models):
    """The endless model with the default limits: every word is cut at MAX_WORD_LEN."""
    s = start_ready(models["endless"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def small_limits_server(models):
    s = start_ready(models["endless"], MAX_N="5", MAX_WORD_LEN="7")
    yield s
    s.stop()


# --- n -------------------------------------------------------------------------------------


def test_n_up_to_max_n(server):
    r = server.get(f"/sample?n={MAX_N}&seed=1")
    assert r.status_code == 200
    assert r.json()["n"] == MAX_N and len(r.json()["words"]) == MAX_N
    body = assert_problem(server.get(f"/sample?n={MAX_N + 1}"), 400, "n")
    assert str(MAX_N) in body["errors"][0]["reason"]


def test_max_n_and_max_word_len_are_configurable(small_limits_server):
    r = small_limits_server.get("/sample?n=5&seed=3")
    assert r.status_code == 200
    assert [len(w) for w in r.json()["words"]] == [7] * 5
    body = assert_problem(small_limits_server.get("/sample?n=6"), 400, "n")
    assert "at most 5" in body["errors"][0]["reason"]
    doc = small_limits_server.get("/openapi.json").json()
    (n,) = [p for p in doc["paths"]["/sample"]["get"]["parameters"] if p["name"] == "n"]
    assert n["schema"]["maximum"] == 5


def test_words_are_cut_at_max_word_len(endless_server):
    words = endless_server.get("/sample?n=20&seed=5").json()["words"]
    assert [len(w) for w in words] == [MAX_WORD_LEN] * 20
    assert set("".join(words)) == {"a", "b"}


# --- the query string, the request line, the headers ----------------------------------------


def test_query_string_over_1_kib_is_414(server):
    filler = "&x=" + "a" * 1024
    at_limit = ("n=1" + filler)[:1024]
    assert_problem(server.get("/sample?" + at_limit), 400, "x")  # read, and refused as unknown
    body = assert_problem(server.get("/sample?" + at_limit + "a"), 414)
    assert "1024" in body["detail"]


OVERSIZED = [
    ("request-line-over-8k", b"GET /healthz?" + b"a" * 8200 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (
        "too-many-headers",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(120))
        + b"\r\n",
        431,
    ),
    (
        "header-over-4k",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"v" * 5000 + b"\r\n\r\n",
        431,
    ),
    (
        "tls-hello",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",
        400,
    ),
]


@pytest.mark.parametrize(
    ("name", "request_bytes", "status"), OVERSIZED, ids=[o[0] for o in OVERSIZED]
)
def test_gunicorn_refuses_oversized_requests_and_keeps_serving(server, name, request_bytes, status):
    raw = raw_request(server.port, request_bytes)
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    assert status_of(raw) == status
    assert headers_of(raw).get("connection") == "close"
    r = server.get("/sample?n=3&seed=1")
    assert r.status_code == 200 and len(r.json()["words"]) == 3


# --- the most expensive valid request -------------------------------------------------------


@pytest.mark.parametrize("model", ["endless", "long", "endless-8"])
def test_one_request_draws_a_bounded_amount_of_randomness(models, monkeypatch, model):
    """Sampling sizes its random draws from the model's mean word length; a model whose words
    (almost) never end must not make one request allocate more than a bounded buffer."""
    m = open_model(models[model])
    sampler = m.sampler  # the served model's reference loop, on the file's own table
    assert np.array_equal(sampler.lm.P, probability_table(m.file.W).numpy())
    real_empty = torch.empty
    asked: list[int] = []

    def guarded_empty(*size, **kwargs):
        shape = size[0] if len(size) == 1 and isinstance(size[0], tuple | list) else size
        values = math.prod(shape)
        asked.append(values)
        if values > MAX_DRAW_VALUES:
            raise AssertionError(
                f"one request asked for {values:,} random values "
                f"({values * 4 / 2**20:,.0f} MiB) at once"
            )
        return real_empty(*size, **kwargs)

    monkeypatch.setattr(torch, "empty", guarded_empty)
    words = sampler.sample(MAX_N, 7, MAX_WORD_LEN)
    assert len(words) == MAX_N and max(map(len, words)) <= MAX_WORD_LEN
    assert asked, "the draws were not made through torch.empty: this guard saw nothing"
    assert max(asked, default=0) <= MAX_DRAW_VALUES  # (a buffer kept from before: none)


def test_most_expensive_request_is_bounded_in_time_and_memory(endless_server):
    """n = MAX_N words that all run to MAX_WORD_LEN: MAX_N x MAX_WORD_LEN draws, on every worker
    at once (2 workers x 2 threads): all answered, no worker killed by gunicorn's TIMEOUT, and
    the memory bounded. The times are printed, not asserted (the benchmark's figures)."""
    s = endless_server
    for _ in range(4):  # warm up both workers: first requests fault pages in
        assert s.get("/sample?n=1").status_code == 200
    workers = workers_of(s)
    before = {pid: peak_rss_kib(pid) for pid in workers}

    def expensive(seed: int) -> tuple[float, int, list[str]]:
        t = time.perf_counter()
        r = s.get(f"/sample?n={MAX_N}&seed={seed}")
        return time.perf_counter() - t, r.status_code, r.json()["words"]

    t0 = time.perf_counter()
    single = expensive(0)
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(expensive, range(1, 5)))
    t_four = time.perf_counter() - t0

    for _seconds, status, words in [single, *results]:
        assert status == 200
        assert len(words) == MAX_N and {len(w) for w in words} == {MAX_WORD_LEN}
    assert s.worker_pids() == workers  # no worker was killed or restarted
    growth_mib = max(peak_rss_kib(pid) - before[pid] for pid in workers) / 1024
    print(
        f"\nmost expensive request: n={MAX_N} x {MAX_WORD_LEN} symbols: {t_single:.2f} s alone, "
        f"{t_four:.2f} s for 4 at once; worker peak RSS +{growth_mib:.1f} MiB"
    )
    assert growth_mib < EXPENSIVE_PEAK_MIB
