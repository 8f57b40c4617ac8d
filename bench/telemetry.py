"""Scenario 23: the cost of counting and timing every request (telemetry/metrics.py).

Two `custodia serve` of the same build side by side, one without MetricsMiddleware
(bench/settings_no_metrics.py); both run granian's two workers in prometheus_client's
multiprocess mode, as production does, so the measured side writes its counters to the
workers' files. Loads: the client detail through the API (a token, RLS, an audited read) and
the security page (a template with no data: the cheapest request, where a fixed cost shows
most). Mirrored order, with without without with; each side's mean.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Bench, mean_of, server, wrk

CONNECTIONS = 8
ORDER = ("with", "without", "without", "with")


def scenario_23(
    bench: Bench, prod: dict[str, str], bearer: dict[str, str], data: dict[str, Any], seconds: int
) -> None:
    """req/s and p99 with the metrics middleware against the same server settings without."""
    ids = [client["id"] for client in data["clients"]]
    loads: dict[str, tuple[list[str], dict[str, str]]] = {
        "detail": ([f"/api/v1/clients/{i}" for i in ids], bearer),
        "page": (["/security/"], {}),
    }
    plain_env = {**prod, "DJANGO_SETTINGS_MODULE": "bench.settings_no_metrics"}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with server(prod) as with_url, server(plain_env) as without_url:
        urls = {"with": with_url, "without": without_url}
        for url in urls.values():
            # Unmeasured: a fresh server's first seconds fall on neither side.
            for paths, headers in loads.values():
                wrk(url, paths, seconds=2, connections=CONNECTIONS, headers=headers)
        for kind, (paths, headers) in loads.items():
            for side in ORDER:
                runs.setdefault(kind, {}).setdefault(side, []).append(
                    wrk(
                        urls[side], paths, seconds=seconds, connections=CONNECTIONS, headers=headers
                    )
                )
    name = "23-metrics-middleware"
    bench.results[name] = {
        "runs": {
            f"{kind} {side} {i}": run
            for kind, sides in runs.items()
            for side, side_runs in sides.items()
            for i, run in enumerate(side_runs)
        }
    }
    for kind, figure in (("detail", "client detail API"), ("page", "security page")):
        measured, baseline = (mean_of(runs[kind][side]) for side in ("with", "without"))
        bench.record(name, f"{figure} req/s", measured["ok_rps"], baseline["ok_rps"], at_least=0.95)
        bench.record(name, f"{figure} p99 ms", measured["p99_ms"], baseline["p99_ms"])
