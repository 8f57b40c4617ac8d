"""Public trust documents: security.txt (RFC 9116) and the security page."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def security_txt(request: HttpRequest) -> HttpResponse:
    """Contact, Expires (a year ahead, renewed with each deploy), Policy, Canonical."""
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).replace(microsecond=0)
    lines = [
        f"Contact: {settings.SECURITY_CONTACT}",
        f"Expires: {expires.isoformat().replace('+00:00', 'Z')}",
        f"Policy: {settings.PUBLIC_URL}/security/",
        "Preferred-Languages: en",
        f"Canonical: {settings.PUBLIC_URL}/.well-known/security.txt",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@require_safe
def security_page(request: HttpRequest) -> HttpResponse:
    """What Custodia protects and how to report a vulnerability."""
    return render(request, "trust/security.html", {"contact": settings.SECURITY_CONTACT})
