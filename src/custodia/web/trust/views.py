"""Public trust documents: security.txt (RFC 9116), the security page and its figures, the
subprocessors, retention and privacy pages, a business's own published page and the owner's
switch for it (docs/transparency.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.lifecycle import retention
from custodia.lifecycle.backups import unreadable_everywhere_days
from custodia.tenancy.models import Business
from custodia.transparency import subprocessors
from custodia.transparency.access import publication_of, published_business
from custodia.transparency.actions import do_publish_security_page, do_unpublish_security_page
from custodia.transparency.figures import business_figures, platform_figures
from custodia.web.decorators import member_required
from custodia.web.forms import form_action

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


def transport() -> dict[str, Any]:
    """The TLS, header and cookie settings in force (those the header middleware applies)."""
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    return {
        "tls_min": settings.TLS_MIN_VERSION,
        "tls_min_label": settings.TLS_MIN_VERSION.upper().replace("TLS", "TLS "),
        "behind_proxy": settings.SECURE_PROXY_SSL_HEADER is not None,
        "ssl_redirect": settings.SECURE_SSL_REDIRECT,
        "hsts_days": settings.SECURE_HSTS_SECONDS // 86400,
        "hsts_subdomains": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
        "hsts_preload": settings.SECURE_HSTS_PRELOAD,
        "csp": "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items()),
        "frame_options": settings.X_FRAME_OPTIONS,
        "referrer_policy": settings.SECURE_REFERRER_POLICY,
        "cookies": [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "secure": settings.SESSION_COOKIE_SECURE,
                "httponly": settings.SESSION_COOKIE_HTTPONLY,
                "samesite": settings.SESSION_COOKIE_SAMESITE,
            },
            {
                "name": settings.CSRF_COOKIE_NAME,
                "secure": settings.CSRF_COOKIE_SECURE,
                "httponly": settings.CSRF_COOKIE_HTTPONLY,
                "samesite": settings.CSRF_COOKIE_SAMESITE,
            },
        ],
    }


def _common() -> dict[str, Any]:
    contact = settings.SECURITY_CONTACT
    return {
        "contact": contact,
        "contact_label": contact.removeprefix("mailto:"),
        "key_rotation_days": settings.KEY_ROTATION_DAYS,
        "backup_retention_days": settings.BACKUP_RETENTION_DAYS,
        "retention_policy": retention.policy(),
        "operator_name": settings.OPERATOR_NAME,
        "operator_contact": settings.OPERATOR_CONTACT,
        "operator_contact_label": settings.OPERATOR_CONTACT.removeprefix("mailto:"),
    }


@require_safe
def security_page(request: HttpRequest) -> HttpResponse:
    """What Custodia protects today, each claim beside the live figure that shows it holds."""
    figures = platform_figures()
    context = {
        **_common(),
        "figures": figures,
        "drill": figures.drill,
        "transport": transport(),
        "window_before": Business._meta.get_field("access_window_before_hours").get_default(),
        "window_after": Business._meta.get_field("access_window_after_hours").get_default(),
        "session_days": settings.SESSION_COOKIE_AGE // 86400,
        "token_max_days": 365,
        "keystore_backup_retention_days": settings.KEYSTORE_BACKUP_RETENTION_DAYS,
        "unreadable_after_days": unreadable_everywhere_days(),
        "backup_engine": settings.BACKUP_ENGINE,
        "pgbackrest_full_days": settings.PGBACKREST_FULL_EVERY_DAYS,
        "grace_days": settings.CLOSED_BUSINESS_GRACE_DAYS,
        "export_ttl_hours": settings.EXPORT_TTL_HOURS,
        "webhook_overlap_hours": settings.WEBHOOKS_ROTATION_OVERLAP_HOURS,
    }
    return render(request, "trust/security.html", context)


@require_safe
def subprocessors_page(request: HttpRequest) -> HttpResponse:
    """The services that process this installation's data, from its configuration."""
    return render(
        request,
        "trust/subprocessors.html",
        {**_common(), "subprocessors": subprocessors.current()},
    )


@require_safe
def retention_page(request: HttpRequest) -> HttpResponse:
    """How long each kind of record is kept (lifecycle/retention.py, the one policy)."""
    return render(request, "trust/retention.html", _common())


@require_safe
def privacy_page(request: HttpRequest) -> HttpResponse:
    """The privacy policy of this installation, naming its operator."""
    return render(
        request,
        "trust/privacy.html",
        {**_common(), "subprocessors": subprocessors.current()},
    )


@require_safe
def business_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A business's own security page for its clients: published and open, else 404."""
    business = published_business(slug)
    context = {
        **_common(),
        "business": business,
        "figures": business_figures(business.id),
        "subprocessors": subprocessors.current(),
    }
    return render(request, "trust/business.html", context)


class PublishForm(forms.Form):
    publish = forms.TypedChoiceField(
        choices=[("yes", "Publish"), ("no", "Withdraw")],
        coerce=lambda value: value == "yes",
        error_messages={
            "required": "Choose publish or withdraw.",
            "invalid_choice": "Choose publish or withdraw.",
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.BUSINESS_SECURITY_WRITE)
def publish_page(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The owner's switch for the business's own security page."""
    form = PublishForm(request.POST if request.method == "POST" else None)

    def page(status: int = 200) -> HttpResponse:
        context = {
            "form": form,
            "publication": publication_of(actor),
            "address": f"{settings.PUBLIC_URL}/b/{actor.business.slug}/security/",
        }
        return render(request, "trust/publish.html", context, status=status)

    if request.method != "POST":
        return page()

    def act() -> bool:
        if form.cleaned_data["publish"]:
            do_publish_security_page(actor=actor)
            return True
        do_unpublish_security_page(actor=actor)
        return False

    return form_action(
        request,
        form,
        act,
        success=None,
        done=lambda published: _published_message(request, published),
        page=page,
    )


def _published_message(request: HttpRequest, published: bool) -> HttpResponse:
    done = "published" if published else "withdrawn"
    messages.success(request, f"Your business's security page is {done}.")
    return redirect("transparency_publish")
