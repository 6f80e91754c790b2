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

REQUESTS = Counter(
    "civil_words_http_requests_total", "HTTP requests answered", ["endpoint", "method", "status"]
)
LATENCY = Histogram(
    "civil_words_http_request_duration_seconds",
    "Time from request to response, by endpoint",
    ["endpoint"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
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
MODEL = Gauge(
    "civil_words_model_info",
    "The served model (value 1), by version",
    ["version"],
    multiprocess_mode="max",
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
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask, version: str) -> None:
    MODEL.labels(version=version).set(1)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        endpoint = _endpoint()
        _requests(endpoint, request.method, response.status_code).inc()
        started = g.get("started")
        if started is not None:
            _latency(endpoint).observe(time.perf_counter() - started)
        return response


# `.labels()` looks its child up anew on each call; the label values are few, so keep them.
@cache
def _requests(endpoint: str, method: str, status: int):
    return REQUESTS.labels(endpoint, method, str(status))


@cache
def _latency(endpoint: str):
    return LATENCY.labels(endpoint)


@cache
def _words(version: str, constrained: bool):
    return WORDS.labels(model=version, constrained="true" if constrained else "false")


@cache
def _rejected(version: str, reason: str):
    return REJECTED.labels(model=version, reason=reason)


def words_generated(version: str, n: int, constrained: bool = False) -> None:
    _words(version, constrained).inc(n)


def words_rejected(version: str, rejected: dict[str, int]) -> None:
    for reason, count in rejected.items():
        _rejected(version, reason).inc(count)
