"""The project's gunicorn configuration; every value comes from `Settings` (the environment).

Used by `civil-words serve`, and usable directly:

    gunicorn -c python:service.server.gunicorn_conf 'service:create_app()'

Metrics are correct across workers only with PROMETHEUS_MULTIPROC_DIR set before the app is
imported. `serve` sets it up (created and emptied); run directly, this module does the same
when it is unset, with a new temporary directory. (Set it yourself, and it is yours to empty
before each start: counters of an earlier run would be summed into this one.)
"""

from __future__ import annotations

import json
import os

from gunicorn import util

from service.server.preload import steady_malloc
from service.settings import Settings

_s = Settings()
steady_malloc()  # the app is loaded after the configuration: before anything large

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    from service.server.preload import prepare_metrics_dir

    # Read when prometheus_client is first imported, which is after this module (the app is
    # loaded after the configuration).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prepare_metrics_dir(None))

bind = f"{_s.host}:{_s.port}"
workers = _s.web_concurrency
# Threads let a worker keep connections alive and overlap network waits; the model's work
# holds the GIL, so throughput comes from the worker processes.
worker_class = "gthread"
threads = _s.threads
# Load the app (torch, the model) once in the master: workers share its memory pages, and a
# bad model file stops the server before any worker starts.
preload_app = True
timeout = _s.timeout
graceful_timeout = _s.graceful_timeout
keepalive = _s.keepalive
loglevel = _s.log_level
accesslog = "-"
errorlog = "-"
logger_class = "service.server.logs.JsonAccessLogger"
# Bounded requests: a short query string (the app refuses one over 1 KiB with a problem
# document) and few, short headers; the one body the API takes (POST /score) is bounded by the
# app itself.
limit_request_line = 8190
limit_request_fields = 50
limit_request_field_size = 4096
proc_name = "civil-words"
# gunicorn's control socket lives in $HOME, which a read-only container has not; unused here.
control_socket_disable = True


def post_fork(server, worker):
    import torch

    # The tensors are tiny; one thread per worker avoids oversubscribing the cores.
    torch.set_num_threads(1)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    # Keep the dead worker's counters, drop its live gauges. (Without the directory there are
    # no files to mark, and mark_process_dead would raise in gunicorn's master.)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def _write_problem(sock, status_int, reason, mesg):
    """gunicorn's answer to a request it refuses itself (request line or headers too large,
    not HTTP): a problem document, not an HTML page, with the headers the app's own
    `SecurityHeaders` wrapper adds to a problem document (not restated here)."""
    from service.web.app import SecurityHeaders

    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status_int, "detail": mesg}
    ).encode("latin-1")
    headers: list[tuple[str, str]] = []

    def problem(environ, start_response):
        start_response(f"{status_int} {reason}", [("Content-Type", "application/problem+json")])
        return [body]

    def start_response(status, response_headers, exc_info=None):
        headers.extend(response_headers)

    SecurityHeaders(problem)({}, start_response)
    head = f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = _write_problem
