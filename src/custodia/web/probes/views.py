"""The operators' probes: liveness, readiness and Prometheus metrics (docs/operations.md).

They are answered by web/middleware.py: ProbeMiddleware before sessions, the host check and the
tenant transaction, so a probe makes no session, cookie or audit row and a load balancer may
name the node by its address.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from custodia.telemetry import health, metrics
from custodia.telemetry.state import PlatformState


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Touches nothing."""
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when every check passes, else 503; each check named ok or failing."""
    checks = health.readiness()
    ready = all(result == health.OK for result in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JsonResponse(body, status=200 if ready else 503)


@require_safe
def prometheus(request: HttpRequest) -> HttpResponse:
    """The metrics, for a bearer of CUSTODIA_METRICS_TOKEN only; 404 to everyone else."""
    if not metrics.token_matches(request.headers.get("Authorization", "")):
        return JsonResponse({"detail": "Not found."}, status=404)
    return HttpResponse(metrics.exposition(PlatformState()), content_type=metrics.CONTENT_TYPE)
