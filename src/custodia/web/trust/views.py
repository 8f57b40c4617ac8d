"""Public trust documents: security.txt (RFC 9116) and the security page."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from custodia.lifecycle import retention
from custodia.lifecycle.backups import latest_drill, unreadable_everywhere_days
from custodia.tenancy.models import Business

# RFC 9116 recommends an Expires less than a year ahead. The file is generated from the
# settings on every request, so it is never staler than the running configuration.
SECURITY_TXT_LIFETIME = dt.timedelta(days=180)


@require_safe
def security_txt(request: HttpRequest) -> HttpResponse:
    """Contact (the report form, then the address), Expires, Policy, Preferred-Languages,
    Canonical."""
    expires = (dt.datetime.now(dt.UTC) + SECURITY_TXT_LIFETIME).replace(microsecond=0)
    lines = [
        # RFC 9116 2.5.3: contacts in order of preference; the form first (it is tracked against
        # the 24-hour first-response target, docs/operators.md), then the configured address.
        f"Contact: {settings.PUBLIC_URL}{reverse('security_report')}",
        f"Contact: {settings.SECURITY_CONTACT}",
        f"Expires: {expires.isoformat().replace('+00:00', 'Z')}",
        f"Policy: {settings.PUBLIC_URL}/security/",
        "Preferred-Languages: en",
        f"Canonical: {settings.PUBLIC_URL}/.well-known/security.txt",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@require_safe
def security_page(request: HttpRequest) -> HttpResponse:
    """What Custodia protects today, what is planned, and how to report a vulnerability."""
    contact = settings.SECURITY_CONTACT
    context = {
        "contact": contact,
        "contact_label": contact.removeprefix("mailto:"),
        "window_before": Business._meta.get_field("access_window_before_hours").get_default(),
        "window_after": Business._meta.get_field("access_window_after_hours").get_default(),
        "session_days": settings.SESSION_COOKIE_AGE // 86400,
        "token_max_days": 365,
        "key_rotation_days": settings.KEY_ROTATION_DAYS,
        "backup_retention_days": settings.BACKUP_RETENTION_DAYS,
        "keystore_backup_retention_days": settings.KEYSTORE_BACKUP_RETENTION_DAYS,
        "unreadable_after_days": unreadable_everywhere_days(),
        "drill": latest_drill(),
        "retention_policy": retention.policy(),
        "backup_engine": settings.BACKUP_ENGINE,
        "pgbackrest_full_days": settings.PGBACKREST_FULL_EVERY_DAYS,
        "grace_days": settings.CLOSED_BUSINESS_GRACE_DAYS,
        "export_ttl_hours": settings.EXPORT_TTL_HOURS,
        "webhook_overlap_hours": settings.WEBHOOKS_ROTATION_OVERLAP_HOURS,
    }
    return render(request, "trust/security.html", context)
