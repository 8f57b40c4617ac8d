"""Security headers on every vault answer.

The default policy allows nothing (JSON answers need no resources and may not be framed). The
hosted form's view sets its own policy: its CSS from the vault, framed by the app's origin only,
posting to the vault and redirected to the app (vault/views.py: FORM_POLICY).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

DEFAULT_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = DEFAULT_POLICY
            response["X-Frame-Options"] = "DENY"
        response.setdefault("Cache-Control", "no-store")
        response["Cross-Origin-Resource-Policy"] = "same-origin"
        return response
