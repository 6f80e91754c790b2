"""The metrics as a real Prometheus sees them, not only as the client library's parser reads them.

Debian's `prometheus` runs on 127.0.0.1 with the rules of deploy/monitoring/rules.yml, scraping
a real server (`civil-words serve`, 2 workers) every second. The test sends a known number of
requests of each kind, SIGKILLs a worker once on the way, and asks Prometheus' query API:
`increase()` of the request counters between two scrapes must equal what was sent (exactly:
the range starts and ends on scrape timestamps, so nothing is extrapolated), and
`histogram_quantile` must give a latency inside the histogram's bounds. `promtool check metrics`
must find nothing to say about /metrics. Without prometheus or promtool these tests fail.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from service.web.metrics import LATENCY_BUCKETS
from tests.conftest import ROOT, SHIPPED_MODEL
from tests.server import Server, free_port, start_server
from tests.test_faults import kill_and_wait

pytestmark = pytest.mark.server

RULES = ROOT / "deploy" / "monitoring" / "rules.yml"
JOB = "civil-words"
# What the test sends after the warm-up: (path, endpoint label, status) -> count.
TRAFFIC = {
    ("/sample?n=1", "/sample", "200"): 120,
    ("/sample?n=50&seed=7", "/sample", "200"): 30,
    ("/prob?bigram=es", "/prob", "200"): 60,
    ("/sample?n=0", "/sample", "400"): 25,
    ("/prob?bigram=ka", "/prob", "400"): 15,
    ("/nope", "unmatched", "404"): 10,
    ("/loss", "/loss", "200"): 20,
}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make test` installs Debian's prometheus")
    return found


class Prometheus:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path):
        self.proc, self.port, self.log = proc, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params) -> dict | list:
        r = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (params, body)
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)["result"]

    def scrape_times(self) -> list[float]:
        """Timestamps of the server's scrapes in the last minute, oldest first."""
        result = self.query(f'up{{job="{JOB}"}}[1m]')
        return [float(ts) for ts, _ in result[0]["values"]] if result else []

    def scrape_after(self, t: float, timeout: float = 30) -> float:
        """The first successful scrape that started after `t`, once it is stored."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            later = [ts for ts in self.scrape_times() if ts > t]
            if later:
                up = self.query(f'up{{job="{JOB}"}}', at=later[0])
                assert up and up[0]["value"][1] == "1", f"scrape at {later[0]} failed"
                return later[0]
            time.sleep(0.2)
        pytest.fail(f"no scrape after {t} within {timeout} s:\n{self.log.read_text()}")


@pytest.fixture(scope="module")
def server():
    s = start_server(SHIPPED_MODEL, workers=2)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prometheus")
    config = tmp / "prometheus.yml"
    config.write_text(
        f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: {JOB}
    static_configs:
      - targets: ["127.0.0.1:{server.port}"]
""",
        encoding="utf-8",
    )
    port = free_port()
    log = tmp / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    prom = Prometheus(proc, port, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"prometheus exited:\n{log.read_text()}"
        try:
            if requests.get(f"{prom.url}/-/ready", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail(f"prometheus not ready:\n{log.read_text()}")
    yield prom
    proc.terminate()
    proc.wait(30)


def send(server: Server, path: str, status: str, count: int) -> None:
    for _ in range(count):
        # A new connection each time: none is left on a worker that gets killed.
        r = requests.get(server.url + path, timeout=30, headers={"Connection": "close"})
        assert r.status_code == int(status), (path, r.status_code)


def test_promtool_finds_nothing_to_say_about_metrics(server):
    for (path, _, status), _ in TRAFFIC.items():
        send(server, path, status, 1)
    text = server.get("/metrics").text
    proc = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), (
        proc.stdout + proc.stderr
    )


def test_prometheus_counts_what_was_sent(server, prometheus):
    # Every series exists before the range starts (a counter's first sample is not an increase).
    for (path, _, status), _ in TRAFFIC.items():
        send(server, path, status, 1)
    start = prometheus.scrape_after(time.time())

    items = list(TRAFFIC.items())
    half = len(items) // 2
    for (path, _, status), count in items[:half]:
        send(server, path, status, count)
    kill_and_wait(server, server.worker_pids()[0])
    for (path, _, status), count in items[half:]:
        send(server, path, status, count)
    end = prometheus.scrape_after(time.time())

    window = f"{round((end - start) * 1000)}ms"
    result = prometheus.query(
        f'sum by (endpoint, status) (increase(civil_words_http_requests_total{{job="{JOB}"}}'
        f"[{window}]))",
        at=end,
    )
    counted = {
        (r["metric"]["endpoint"], r["metric"]["status"]): float(r["value"][1]) for r in result
    }
    expected: dict[tuple[str, str], int] = {}
    for (_, endpoint, status), count in TRAFFIC.items():
        expected[endpoint, status] = expected.get((endpoint, status), 0) + count
    for key, count in expected.items():
        assert counted.get(key) == pytest.approx(count, rel=1e-9), (key, counted)

    # The latency histogram counted the same requests, and its quantiles are usable.
    sent_to_sample = sum(n for (_, endpoint, _), n in TRAFFIC.items() if endpoint == "/sample")
    [observed] = prometheus.query(
        f'sum(increase(civil_words_http_request_duration_seconds_count{{endpoint="/sample"}}'
        f"[{window}]))",
        at=end,
    )
    assert float(observed["value"][1]) == pytest.approx(sent_to_sample, rel=1e-9)
    for q in (0.5, 0.9, 0.99):
        [quantile] = prometheus.query(
            f"histogram_quantile({q}, sum by (le) (increase("
            f'civil_words_http_request_duration_seconds_bucket{{endpoint="/sample"}}[{window}])))',
            at=end,
        )
        seconds = float(quantile["value"][1])
        assert 0 < seconds <= LATENCY_BUCKETS[-1], (q, seconds)
        print(f"\n/sample p{round(q * 100)} by Prometheus: {seconds * 1000:.3f} ms")
    print(f"window {window}; counted {sorted(counted.items())}")


def test_prometheus_loads_and_evaluates_the_rules(server, prometheus):
    prometheus.scrape_after(time.time())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        groups = prometheus.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules):
            break
        time.sleep(0.5)
    assert {g["file"] for g in groups} == {str(RULES)}
    assert len(rules) == 7
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    # The server is up: the no-ready-pod alert is not pending, and the recording rules have data.
    assert not [r for r in rules if r["name"] == "CivilWordsNoReadyPod" and r["alerts"]]
    assert prometheus.query("job_endpoint_status:civil_words_http_requests:rate5m")
