"""WSGI entry point for granian: Django's app, with HEAD answered without a body.

Django leaves the body of a HEAD response for the server to drop; granian sends it over HTTP/2,
which clients reject as a protocol error. Dropping it here keeps HEAD well-formed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def without_head_body(app: WsgiApp) -> WsgiApp:
    """Wrap a WSGI app so that HEAD responses keep their headers and lose their body."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        result = app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "HEAD":
            return result
        # close() ends Django's request (signals, connection clean-up) without the body.
        close = getattr(result, "close", None)
        if close is not None:
            close()
        return []

    return wrapped


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "custodia.settings")
application = without_head_body(get_wsgi_application())
