"""The gunicorn configuration used directly, as its docstring says it can be, not through
`civil-words serve`: without PROMETHEUS_MULTIPROC_DIR, a worker's death once crashed the master
(`TypeError` in `child_exit`). Its refusals carry the app's own headers; the server modules
import one another without a cycle."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHIPPED_MODEL
from tests.server import Server, free_port, wait_ready
from tests.test_faults import kill_and_wait
from tests.test_limits import headers_of, raw_request, status_of

SERVER_PACKAGE = ROOT / "service" / "server"


def requests_counted(server: Server, endpoint: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(server.get("/metrics").text):
        for s in family.samples:
            if s.name == "civil_words_http_requests_total" and s.labels["endpoint"] == endpoint:
                total += s.value
    return total


@pytest.fixture(scope="module")
def bare_gunicorn(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gunicorn")
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


@pytest.mark.server
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


@pytest.mark.server
def test_gunicorns_own_refusal_carries_the_apps_headers(bare_gunicorn):
    """A request gunicorn refuses before the app sees it (a header over 4 KiB) gets a problem
    document with the very headers the app puts on its own problem documents."""
    server = bare_gunicorn
    raw = raw_request(
        server.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"v" * 5000 + b"\r\n\r\n"
    )
    assert status_of(raw) == 431, raw[:300]
    refused = headers_of(raw)
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert int(refused["content-length"]) == len(body)
    assert json.loads(body)["status"] == 431
    app_answer = server.get("/no-such-page")
    assert app_answer.status_code == 404
    assert app_answer.headers["Content-Type"] == "application/problem+json"
    own = {"server", "date", "content-length", "connection"}  # per answer, not the app's policy
    expected = {k.lower(): v for k, v in app_answer.headers.items() if k.lower() not in own}
    assert "content-security-policy" in expected and "x-content-type-options" in expected
    assert {k: refused.get(k) for k in expected} == expected
    # and the server keeps serving
    assert server.get("/healthz").status_code == 200


def server_imports() -> dict[str, set[str]]:
    """{module: the service.server modules it imports, at the top or inside a function}."""
    graph = {}
    for path in sorted(SERVER_PACKAGE.glob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            imported |= {n.rsplit(".", 1)[-1] for n in names if n.startswith("service.server.")}
        graph[path.stem] = imported & {p.stem for p in SERVER_PACKAGE.glob("*.py")}
    return graph


def test_server_modules_import_each_other_without_a_cycle():
    graph = server_imports()
    assert graph["preload"] == set(), "the leaf imports no other server module"
    assert "serve" not in graph["master"] and "serve" not in graph["gunicorn_conf"]
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module not in done:
            for other in graph[module]:
                visit(other, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())
