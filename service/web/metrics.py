"""Prometheus metrics, correct across gunicorn workers.

Under `civil-words serve`, PROMETHEUS_MULTIPROC_DIR is set (and wiped) before this module is
imported, so every worker writes its samples to files there and `/metrics` sums them with a
fresh `MultiProcessCollector` per scrape. The gunicorn config's `child_exit` hook marks a dead
worker's files, so its gauges disappear and its counters stay counted.
"""

from __future__ import annotations

import os
import time
from functools import cache

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# `model` is the name of the model a request used ("" for the endpoints that use none, and for a
# name that is not served: label values stay the few served names).
REQUESTS = Counter(
    "civil_words_http_requests_total",
    "HTTP requests answered",
    ["endpoint", "method", "status", "model"],
)
# Bounds of the latency histogram, in seconds. Measured on the 2-core build machine (2 workers
# under wrk, 2026-11-28): /healthz and /loss take 40-75 us, /prob and /readyz 0.1-0.3 ms,
# /sample?n=1 0.2-0.4 ms, /sample?n=1000 30-100 ms; a worker's TIMEOUT is 30 s. So: fine steps
# (x1.5-2) from 50 us to 1 ms, where most requests fall, then x2-2.5 up to 10 s. 0.5 s is the
# p99 alert's threshold (deploy/monitoring/rules.yml).
LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.002, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
LATENCY = Histogram(
    "civil_words_http_request_duration_seconds",
    "Time from request to response, by endpoint and model",
    ["endpoint", "model"],
    buckets=LATENCY_BUCKETS,
)
WORDS = Counter(
    "civil_words_words_generated_total",
    "Words sampled by /sample, with constraints or without",
    ["model", "constrained"],
)
REJECTED = Counter(
    "civil_words_words_rejected_total",
    "Words drawn by /sample and left out by novel (a training word) or unique (a repeat)",
    ["model", "reason"],
)
# Set by each worker for the models it serves; "live" so that the workers a reload replaced (and
# with them the versions they served) drop out of the sum when they exit.
MODEL = Gauge(
    "civil_words_model_info",
    "The served models (value 1), by name and version",
    ["model", "version"],
    multiprocess_mode="livemax",
)
# Counted by the gunicorn master, which checks a new model set on SIGHUP.
RELOADS = Counter(
    "civil_words_model_reloads_total",
    "Model reloads on SIGHUP, by result (ok: the new set serves; failed: the old one still does)",
    ["result"],
)


def _endpoint() -> str:
    """The route template, never the raw path, so label values stay few."""
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def render() -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    # `content_type`, not `mimetype`: Flask would add a second `charset` to a text/* mimetype.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask, models: dict[str, str]) -> None:
    """Record every request; `models` maps the served names to their versions."""
    info_pid = None

    @app.before_request
    def _start() -> None:
        nonlocal info_pid
        g.started = time.perf_counter()
        if info_pid != os.getpid():
            # Once per process that serves: in a gunicorn worker, never in the master (whose
            # "live" gauge would outlive the models a reload replaces).
            info_pid = os.getpid()
            for name, version in models.items():
                MODEL.labels(model=name, version=version).set(1)

    @app.after_request
    def _record(response: Response) -> Response:
        endpoint = _endpoint()
        model = g.get("model", "")
        _requests(endpoint, request.method, response.status_code, model).inc()
        started = g.get("started")
        if started is not None:
            _latency(endpoint, model).observe(time.perf_counter() - started)
        return response


def used_model(name: str) -> None:
    """Label this request's metrics with the model it used."""
    g.model = name


# `.labels()` looks its child up anew on each call; the label values are few, so keep them.
@cache
def _requests(endpoint: str, method: str, status: int, model: str):
    return REQUESTS.labels(endpoint, method, str(status), model)


@cache
def _latency(endpoint: str, model: str):
    return LATENCY.labels(endpoint, model)


@cache
def _words(model: str, constrained: bool):
    return WORDS.labels(model=model, constrained="true" if constrained else "false")


@cache
def _rejected(model: str, reason: str):
    return REJECTED.labels(model=model, reason=reason)


def words_generated(model: str, n: int, constrained: bool = False) -> None:
    _words(model, constrained).inc(n)


def words_rejected(model: str, rejected: dict[str, int]) -> None:
    for reason, count in rejected.items():
        _rejected(model, reason).inc(count)


def reloaded(ok: bool) -> None:
    RELOADS.labels(result="ok" if ok else "failed").inc()


def init_reloads() -> None:
    """Both results at 0 from the start, so that `increase()` sees the first one."""
    for result in ("ok", "failed"):
        RELOADS.labels(result=result)
