"""The gunicorn configuration used directly, as its docstring says it can be, not through
`civil-words serve`: without PROMETHEUS_MULTIPROC_DIR, a worker's death once crashed the master
(`TypeError` in `child_exit`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHIPPED_MODEL
from tests.server import Server, free_port, wait_ready
from tests.test_faults import kill_and_wait

pytestmark = pytest.mark.server


def requests_counted(server: Server, endpoint: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(server.get("/metrics").text):
        for s in family.samples:
            if s.name == "civil_words_http_requests_total" and s.labels["endpoint"] == endpoint:
                total += s.value
    return total


@pytest.fixture()
def bare_gunicorn(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="2", MODEL_PATH=str(SHIPPED_MODEL))
    log = tmp_path / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(gunicorn), "-c", "python:service.server.gunicorn_conf", "service:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc=proc, port=port, log=log, metrics_dir=tmp_path)
    wait_ready(server)
    yield server
    server.stop()


def test_direct_gunicorn_survives_a_worker_death_and_sums_metrics(bare_gunicorn):
    server = bare_gunicorn
    for _ in range(20):
        assert server.get("/healthz").status_code == 200
    before = requests_counted(server, "/healthz")
    assert before >= 20
    victim = server.worker_pids()[0]
    kill_and_wait(server, victim)
    assert server.proc.poll() is None, f"the master died:\n{server.output()}"
    assert "TypeError" not in server.output()
    assert victim not in server.worker_pids() and len(server.worker_pids()) == 2
    # The dead worker's counts are kept: the total only grows.
    for _ in range(10):
        assert server.get("/healthz").status_code == 200
    assert requests_counted(server, "/healthz") >= before + 10
