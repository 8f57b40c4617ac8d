"""Prometheus metrics of the request stream, and their exposition at /metrics.

Labels are a closed set: the HTTP method (unknown ones are "OTHER"), the URL's route name (its
pattern when it has no name: never the raw path, whose ids and secrets would become labels) and
the status class. Nothing names a business, a person or a client.

Under `custodia serve` granian runs several worker processes; the serve command points
PROMETHEUS_MULTIPROC_DIR at an emptied directory under var/run before it starts them, and each
process's counters live in files there, summed at scrape time (prometheus_client's multiprocess
mode). Without it (tests, one process) the counters are this process's own.
"""

from __future__ import annotations

import hmac
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
STATIC = "static"

# No `_created` series: a start time per label set doubles the scrape and tells nothing here.
disable_created_metrics()
# The counters of this process; under multiprocess mode their values go to files as well.
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "custodia_http_requests",
    "HTTP requests answered, by method, route name and status class.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "custodia_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route name.",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LOGIN_FAILURES = Counter(
    "custodia_login_failures",
    "Sign-ins refused for a wrong password or unknown account (no account named).",
    registry=REGISTRY,
)


def route_label(request: HttpRequest) -> str:
    """The route's name (namespaced), else its pattern; "static" or "unmatched" without one."""
    match: ResolverMatch | None = getattr(request, "resolver_match", None)
    if match is not None:
        if match.url_name:
            return match.view_name
        if match.route:
            return match.route
    if request.path_info.startswith(settings.STATIC_URL):
        return STATIC
    return UNMATCHED


class MetricsMiddleware:
    """Counts every answer and times it, outside everything but the request id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        route = route_label(request)
        REQUESTS.labels(method, route, f"{response.status_code // 100}xx").inc()
        LATENCY.labels(method, route).observe(elapsed)
        return response


def _count_login_failure(sender: Any, **kwargs: Any) -> None:
    LOGIN_FAILURES.inc()


def connect_receivers() -> None:
    """Count refused sign-ins (Django's user_login_failed: allauth's password logins)."""
    user_login_failed.connect(_count_login_failure, dispatch_uid="custodia.telemetry.login")


def reset_multiprocess_dir(directory: Path) -> None:
    """An empty directory for the workers' metric files: counters start at zero with the
    server, and no file of a process long gone is summed in."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)


def token_matches(header: str) -> bool:
    """Whether `Authorization` carries CUSTODIA_METRICS_TOKEN (never when none is set)."""
    expected = settings.METRICS_TOKEN
    scheme, _, presented = header.partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def exposition(*collectors: Any) -> bytes:
    """The text exposition: the request counters (every process's under multiprocess mode),
    then `collectors` (the platform's state, computed now)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        counters = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(counters, path=directory)
    else:
        counters = REGISTRY
    # Not described at registration: that would compute every gauge twice per scrape.
    state = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        state.register(collector)
    return generate_latest(counters) + generate_latest(state)
