"""Links that leave the site (every email) name `CUSTODIA_PUBLIC_URL`, never the request's Host.

allauth builds its links from the request (`request.build_absolute_uri`), and Django checks the
Host header's name against `ALLOWED_HOSTS` but not its port, so `Host: localhost:31337` would
send a genuine reset link to another port of the real host. web.middleware.PublicHostMiddleware
refuses such a request; the mail itself is built from the public URL whatever the request said.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

SITE_NAME = "Custodia"


@dataclass(frozen=True)
class PublicSite:
    """What allauth's mail templates read as `current_site` (name and domain), from the public URL
    (Django's RequestSite would take the domain from the Host header)."""

    name: str
    domain: str


def public_url(path: str) -> str:
    """The absolute address of a path of this site: `/accounts/login/` on the public URL."""
    return f"{settings.PUBLIC_URL}{path}"


def public_link(url: str) -> str:
    """A link built from a request, moved onto the public URL (path, query and fragment kept)."""
    parts = urlsplit(url)
    return public_url(urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment)))


def public_site() -> PublicSite:
    """The site as mail names it: Custodia, at the public URL's host and port."""
    return PublicSite(name=SITE_NAME, domain=urlsplit(settings.PUBLIC_URL).netloc)


def public_mail_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """A mail's template context with every link (a `*_url` value) on the public URL.

    allauth builds them from the request, some where no adapter hook reaches (the unknown-account
    mail's signup link). Only `*_url` keys: other strings, such as the user agent a notice quotes,
    are the sender's words and stay as they came, even when they look like a link.
    """
    public = {
        key: public_link(value) if key.endswith("_url") and isinstance(value, str) else value
        for key, value in context.items()
    }
    public["current_site"] = public_site()
    return public


def public_port() -> int:
    """The port the public URL names, or its scheme's default."""
    parts = urlsplit(settings.PUBLIC_URL)
    return parts.port or (443 if parts.scheme == "https" else 80)
