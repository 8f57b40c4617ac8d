"""The plain-HTTP listener: every request gets a 301 to the same place over HTTPS, nothing else.

A WSGI app of its own, without Django, so the HTTP port runs no application code, reads no
request body and echoes nothing back but a well-formed https:// URL. `custodia serve` sets one
of two variables for it: CUSTODIA_REDIRECT_ORIGIN (production: always the public URL's origin,
whatever Host the request named) or CUSTODIA_HTTPS_PORT (development: the request's host name
on the HTTPS port).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote

Environ = dict[str, object]
StartResponse = Callable[[str, list[tuple[str, str]]], object]

# A DNS name, an IPv4 address, or a bracketed IPv6 address, optionally with a port.
HOST_PATTERN = re.compile(
    r"^(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$"
)
# Characters that may stay literal in a path or query; everything else is percent-encoded, so
# the Location header can never carry a space, a quote, a control character or a line break.
PATH_SAFE = "/:@!$&'()*+,;=-._~"
QUERY_SAFE = PATH_SAFE + "?%"


def https_port() -> int:
    """The port the HTTPS listener answers on (443 unless `custodia serve` says otherwise)."""
    raw = os.environ.get("CUSTODIA_HTTPS_PORT", "443")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 65536 else 443


def fixed_origin() -> str:
    """The configured https:// origin to send everyone to, or "" to follow the Host header."""
    origin = os.environ.get("CUSTODIA_REDIRECT_ORIGIN", "").rstrip("/")
    return origin if origin.startswith("https://") else ""


def https_location(environ: Environ, port: int, origin: str = "") -> str | None:
    """The https:// URL for this request, or None when the Host header is not a host name."""
    if origin:
        base = origin
    else:
        raw_host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
        match = HOST_PATTERN.match(raw_host)
        if match is None:
            return None
        host = match.group("host").lower()
        base = "https://" + (host if port == 443 else f"{host}:{port}")
    # WSGI hands the path over decoded as latin-1; turn it back into the bytes the client sent.
    raw_path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "/"))
    path = quote(raw_path.encode("latin-1", "replace"), safe=PATH_SAFE) or "/"
    if not path.startswith("/"):
        path = "/" + path
    query = str(environ.get("QUERY_STRING", ""))
    query = quote(query.encode("latin-1", "replace"), safe=QUERY_SAFE)
    return f"{base}{path}" + (f"?{query}" if query else "")


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """301 to HTTPS for every method; 400 when the Host header cannot be trusted as a name."""
    location = https_location(environ, https_port(), fixed_origin())
    if location is None:
        body = b"Bad request: missing or malformed Host header.\n"
        start_response(
            "400 Bad Request",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]
    body = b"This site is served over HTTPS only.\n"
    start_response(
        "301 Moved Permanently",
        [
            ("Location", location),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
