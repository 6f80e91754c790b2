"""Load: at saturation every valid request gets a 2xx, nothing is lost, memory stays flat.

wrk (2 threads, 32 connections) drives a mix of the endpoints a client uses against the real
server (gunicorn, 2 workers x 2 threads). The server's own request counters must account for
every answer wrk got, and the proportional set size (PSS) of the master and its workers must
not grow from the start of the run to its end (its anonymous part, see `pss_kib`). Run with
`-s` to see the figures; `bench/soak.py` is the long version (minutes) of the same run.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.test_limits import workers_of

WRK = "/usr/bin/wrk"
# The mix, one request of each in turn on every connection (a path is a GET; a pair, a POST of
# that JSON body): the lexicon's answers among them (OLD20, stats, matched pseudowords).
PSEUDOWORDS = '{"targets": ["maison"], "per_target": 2, "seed": 1}'
MIX = [
    "/sample?n=1",
    "/sample?n=50",
    "/prob?bigram=es",
    "/loss",
    "/model",
    "/healthz",
    "/score?word=maison",
    "/sample?n=5&seed=1&novel=true&stats=true",
    ("/pseudowords", PSEUDOWORDS),
]
MIX_ENDPOINTS = {"/sample", "/prob", "/loss", "/model", "/healthz", "/score", "/pseudowords"}
THREADS, CONNECTIONS = 2, 32
PSS_GROWTH = 0.20  # generous: the run must not leak, not be tight to the KiB


def mix_script(paths: list = MIX) -> Path:
    """A wrk Lua script sending `paths` in turn (a path: GET; (path, JSON body): POST)."""

    def entry(p) -> str:
        path, body = (p, None) if isinstance(p, str) else p
        return f"{{{_lua(path)}, {_lua(body) if body else 'nil'}}}"

    listed = ", ".join(map(entry, paths))
    lua = (
        f"local paths = {{{listed}}}\n"
        'local json = {["Content-Type"] = "application/json"}\n'
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        "  local p = paths[i]\n"
        '  if p[2] then return wrk.format("POST", p[1], json, p[2]) end\n'
        '  return wrk.format("GET", p[1])\n'
        "end\n"
    )
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="civil-words-mix-", delete=False)
    with f:
        f.write(lua)
    return Path(f.name)


def _lua(text: str) -> str:
    """A Lua string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class WrkResult:
    requests: int  # answers received (any status)
    seconds: float
    rps: float
    non_2xx: int  # answers with a status >= 400 (wrk counts 3xx as fine; we send none)
    socket_errors: dict[str, int] = field(default_factory=dict)  # connect, read, write, timeout
    latency_ms: dict[str, float] = field(default_factory=dict)  # "50%", "90%", "99%", "max"
    output: str = ""

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values())

    def row(self) -> str:
        lat = self.latency_ms
        return (
            f"{self.requests:>9,} req  {self.rps:>8,.0f} req/s  non-2xx {self.non_2xx}  "
            f"socket errors {self.errors}  p50 {lat.get('50%', 0):.1f} ms  "
            f"p99 {lat.get('99%', 0):.1f} ms  max {lat.get('max', 0):.1f} ms"
        )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(out: str) -> WrkResult:
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", out)
    assert m, f"not wrk output:\n{out}"
    requests, seconds = int(m[1]), _ms(m[2], m[3]) / 1e3
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    counts = [int(v) for v in sock.groups()] if sock else [0, 0, 0, 0]
    errors = dict(zip(("connect", "read", "write", "timeout"), counts, strict=True))
    latency = {
        f"{p}%": _ms(v, u)
        for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    }
    lat = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)", out)
    if lat:
        latency["max"] = _ms(lat[1], lat[2])
    return WrkResult(requests, seconds, rps, int(non[1]) if non else 0, errors, latency, out)


def run_wrk(
    url: str,
    seconds: float,
    script: Path | None = None,
    threads: int = THREADS,
    connections: int = CONNECTIONS,
) -> WrkResult:
    script = script or mix_script()
    cmd = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    assert r.returncode == 0, r.stderr
    return parse_wrk(r.stdout)


def pss_kib(pids: list[int], field: str = "Pss") -> int:
    """Sum of a /proc/PID/smaps_rollup field over `pids`, in KiB.

    "Pss" is the proportional set size: each page divided among the processes that map it, so
    the master and workers' shared pages count once. Its file-backed part (torch's libraries)
    is also shared with every other process on the machine that maps them, and moves with
    them; "Pss_Anon", the anonymous memory (heaps, tensors, Python objects), is ours alone and
    is what a leak grows.
    """
    total = 0
    for pid in pids:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        total += int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M)[1])
    return total


def memory(server) -> tuple[int, int]:
    """(PSS, anonymous PSS) of the master and its workers, in KiB."""
    pids = server_pids(server)
    return pss_kib(pids), pss_kib(pids, "Pss_Anon")


def server_pids(server) -> list[int]:
    return [server.proc.pid, *server.worker_pids()]


def requests_counted(server, endpoints: set[str] = MIX_ENDPOINTS) -> int:
    """Answers the server counted on `endpoints`, summed over every worker, dead or alive."""
    total = 0
    for family in text_string_to_metric_families(server.get("/metrics").text):
        if family.name == "civil_words_http_requests":
            total += sum(
                s.value
                for s in family.samples
                if s.name.endswith("_total") and s.labels["endpoint"] in endpoints
            )
    return int(total)


def test_saturation_answers_every_valid_request_and_memory_stays_flat(server):
    workers = workers_of(server)
    warm = run_wrk(server.url, seconds=3)  # fault pages in, fill caches, open connections
    assert warm.non_2xx == 0 and warm.errors == 0, warm.output
    start, start_anon = memory(server)
    counted_before = requests_counted(server)

    run = run_wrk(server.url, seconds=10)

    counted = requests_counted(server) - counted_before
    end, end_anon = memory(server)
    growth = end_anon / start_anon - 1
    print(
        f"\nwrk -t{THREADS} -c{CONNECTIONS} -d10s (mix of {len(MIX)} requests): {run.row()}\n"
        f"server counted {counted:,}; master+workers PSS {start / 1024:.1f} -> "
        f"{end / 1024:.1f} MiB, anonymous PSS {start_anon / 1024:.1f} -> "
        f"{end_anon / 1024:.1f} MiB ({growth:+.1%})"
    )
    assert run.requests > 1000, run.output  # it was a load, not a trickle
    assert run.non_2xx == 0, run.output
    assert run.errors == 0, run.output
    # Every answer wrk got was counted. At most one request per connection was in flight when
    # each wrk run stopped reading, and may have been counted on either side of the reading.
    assert run.requests <= counted <= run.requests + 2 * CONNECTIONS
    assert server.worker_pids() == workers  # no worker died or was recycled
    assert growth < PSS_GROWTH
