"""Telling devices that a pass changed (docs/wallet.md, "Pushes").

A push names no pass: Apple's devices, pushed with the pass type's topic, then ask the web
service which of their passes changed since their tag. The adapter is chosen by
CUSTODIA_WALLET_PUSH_ADAPTER: `ApnsPush` (production's default) sends each push to Apple's
push service; `RecordingPush` keeps them in memory (development, tests).

What `ApnsPush` sends follows Apple's Wallet documentation ("Updating a Pass" in the Wallet
Developer Guide; "Adding a Web Service to Update Passes"): a POST of an empty JSON dictionary
`{}` to `/3/device/<push token>` over HTTP/2 and TLS 1.2 or later, authenticated by the Pass
Type ID certificate and its key as the TLS client certificate, with the pass type identifier as
`apns-topic` ("Sending notification requests to APNs" for the request and its answers). It
adds `apns-push-type: background` with `apns-priority: 5` (a push that shows nothing; Apple
requires priority 5 for that type and the header on watchOS), as maintained pass servers do
(e.g. spatie/laravel-mobile-pass posts `{}` with the topic and deletes the registration on
410; dotAPNS users report wallet pushes with the background type).
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Push:
    """One push: the pass type (APNs topic) and a device's push token."""

    pass_type_id: str
    push_token: str


class PushAdapter(Protocol):
    """Delivers pushes; never raises for a device or a push service that is gone."""

    def send(self, pushes: list[Push]) -> list[Push]:
        """Deliver every push (best effort: a device that misses one catches up on its next
        refresh); returns the pushes whose device the push service says is gone for good."""


class RecordingPush:
    """Keeps pushes in memory instead of sending them (development and tests)."""

    _lock = threading.Lock()
    sent: list[Push] = []  # noqa: RUF012

    def send(self, pushes: list[Push]) -> list[Push]:
        with self._lock:
            RecordingPush.sent.extend(pushes)
        return []

    @classmethod
    def clear(cls) -> None:
        with cls._lock:
            cls.sent.clear()


# Apple's push tokens are hex; anything else never reaches a URL.
APNS_TOKEN = re.compile(r"[0-9A-Fa-f]{1,200}")
# APNs' `reason` is one word of its documented vocabulary; nothing else of a body is logged.
APNS_REASON = re.compile(r"[A-Za-z]{1,64}")
# Answers that say the token will never work again: its registrations are removed.
GONE_REASONS = frozenset({"BadDeviceToken"})


def _reason(answer: httpx.Response) -> str:
    try:
        reason = answer.json().get("reason", "")
    except (ValueError, AttributeError):
        return ""
    return reason if isinstance(reason, str) and APNS_REASON.fullmatch(reason) else ""


class ApnsPush:
    """Sends each push to Apple's push service (APNs) over HTTP/2, with the pass certificate.

    One HTTP/2 connection per `send` (the pushes of one change, multiplexed on it), closed
    before it returns; every request times out after CUSTODIA_WALLET_APNS_TIMEOUT_SECONDS. It
    never raises: a failure is logged with counts and APNs' reason word, never a push token (it
    names a device) or a serial. 200 is delivered; 410 (Unregistered, ExpiredToken) and 400
    BadDeviceToken say the token is gone (returned, so its registrations are removed); 429, 5xx
    and the rest are logged, not retried (the device catches up on its next refresh). A
    connection that fails or times out ends the batch: the pushes after it are counted lost, so
    a push service that is down or slow costs one timeout, not one per device.
    """

    def __init__(self, url: str | None = None) -> None:
        base = (url or settings.WALLET_APNS_URL).rstrip("/")
        parts = urlsplit(base)
        if parts.scheme != "https" or not parts.hostname:
            raise ImproperlyConfigured("CUSTODIA_WALLET_APNS_URL must be an https:// URL.")
        group = settings.WALLET_APPLE
        if not group:
            raise ImproperlyConfigured("Apple Wallet passes are not configured.")
        self.url = base
        self.certificate_file = group["CUSTODIA_WALLET_PASS_CERT_FILE"]
        self.key_file = group["CUSTODIA_WALLET_PASS_KEY_FILE"]
        self.ca_file = settings.WALLET_APNS_CA_FILE or None
        self.timeout = float(settings.WALLET_APNS_TIMEOUT_SECONDS)

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certificate_file, self.key_file)
        return context

    def send(self, pushes: list[Push]) -> list[Push]:
        """Post each push to APNs; the pushes whose token APNs says is gone."""
        if not pushes:
            return []
        try:
            context = self._tls()
        except (OSError, ssl.SSLError) as exc:
            logger.error(
                "wallet pushes not sent (%d): the pass certificate or key is not usable: %s",
                len(pushes),
                type(exc).__name__,
            )
            return []
        tally: Counter[str] = Counter()
        gone: list[Push] = []
        with httpx.Client(
            http2=True, verify=context, timeout=self.timeout, follow_redirects=False
        ) as client:
            for index, push in enumerate(pushes):
                if not APNS_TOKEN.fullmatch(push.push_token):
                    tally["malformed token"] += 1
                    continue
                try:
                    answer = client.post(
                        f"{self.url}/3/device/{push.push_token}",
                        content=b"{}",
                        headers={
                            "apns-topic": push.pass_type_id,
                            "apns-push-type": "background",
                            "apns-priority": "5",
                            "content-type": "application/json",
                        },
                    )
                except httpx.HTTPError as exc:
                    tally[f"lost ({type(exc).__name__})"] += len(pushes) - index
                    break
                reason = _reason(answer)
                if answer.status_code == 200:
                    tally["delivered"] += 1
                elif answer.status_code == 410 or (
                    answer.status_code == 400 and reason in GONE_REASONS
                ):
                    gone.append(push)
                    tally[f"gone ({answer.status_code} {reason or 'no reason'})"] += 1
                else:
                    tally[f"refused ({answer.status_code} {reason or 'no reason'})"] += 1
        summary = ", ".join(f"{what}: {count}" for what, count in sorted(tally.items()))
        if tally["delivered"] == len(pushes):
            logger.info("wallet pushes sent to APNs: %s", summary)
        else:
            logger.warning("wallet pushes to APNs, not all delivered: %s", summary)
        return gone


def push_adapter() -> PushAdapter:
    """The configured adapter."""
    adapter: PushAdapter = import_string(settings.WALLET_PUSH_ADAPTER)()
    return adapter
