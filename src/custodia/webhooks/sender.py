"""One POST of a signed delivery: to the address checked (pinned), a short timeout, no redirect
followed, the response's body never kept.

The outcome's `error` is one of a few fixed phrases, never a response's or an exception's text
(either may quote anything), so it can be stored and shown in the delivery log.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from custodia.webhooks.destinations import Refused, parse_url, resolve_public

USER_AGENT = "Custodia-Webhooks/1.0"
# Read at most this much of an answer (to let the connection end cleanly); it is not kept.
DRAIN_BYTES = 4096
# Addresses of one name tried in turn when one refuses: a bound on an attempt's length, which
# the lease of attempts.py must outlast.
MAX_ADDRESSES = 2
TIMED_OUT = "timed out"
CONNECTION_FAILED = "could not connect"
TLS_FAILED = "TLS handshake or certificate check failed"
BAD_RESPONSE = "the answer was not valid HTTP"
REDIRECTED = "redirect not followed"
NOT_2XX = "the answer was not a 2xx status"
BAD_URL = "the URL is not valid"


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    delivered: bool
    status: int | None = None
    duration_ms: int = 0
    error: str = ""


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address`, with the URL's host name for SNI, the certificate check and the Host
    header: the address connected to is the one resolve_public checked, not a second lookup."""

    def __init__(
        self, host: str, port: int, address: str, *, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def tls_context() -> ssl.SSLContext:
    """The system's trust store (and WEBHOOKS_CA_FILE when set), hostname checked, TLS 1.2+."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.WEBHOOKS_CA_FILE:
        context.load_verify_locations(cafile=settings.WEBHOOKS_CA_FILE)
    return context


def post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST `body` to `url` once; 2xx is delivered, anything else (a redirect too) is not."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        destination = parse_url(url)
    except ValidationError:
        return Outcome(False, error=BAD_URL)
    try:
        addresses = resolve_public(destination)
    except Refused as refused:
        return Outcome(False, duration_ms=took(), error=str(refused))
    request_headers = {
        **headers,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    context = tls_context()
    error = CONNECTION_FAILED
    for address in addresses[:MAX_ADDRESSES]:
        connection = PinnedHTTPSConnection(
            destination.host,
            destination.port,
            str(address),
            timeout=settings.WEBHOOKS_TIMEOUT_SECONDS,
            context=context,
        )
        try:
            connection.request("POST", destination.path, body=body, headers=request_headers)
            response = connection.getresponse()
            response.read(DRAIN_BYTES)
        except TimeoutError:
            return Outcome(False, duration_ms=took(), error=TIMED_OUT)
        except ssl.SSLError:
            return Outcome(False, duration_ms=took(), error=TLS_FAILED)
        except http.client.HTTPException:
            return Outcome(False, duration_ms=took(), error=BAD_RESPONSE)
        except OSError:
            continue  # refused or unreachable: the next address, if any
        finally:
            connection.close()
        status = response.status
        if 200 <= status < 300:
            return Outcome(True, status=status, duration_ms=took())
        error = REDIRECTED if 300 <= status < 400 else NOT_2XX
        return Outcome(False, status=status, duration_ms=took(), error=error)
    return Outcome(False, duration_ms=took(), error=error)
