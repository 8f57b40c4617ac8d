"""Telling devices that a pass changed (docs/wallet.md).

A push names no pass: Apple's devices, pushed with the pass type's topic, then ask the web
service which of their passes changed since their tag. The adapter is chosen by
CUSTODIA_WALLET_PUSH_ADAPTER. Only the recording adapter exists: it keeps the pushes it was
given in memory (development, tests). An APNs adapter (HTTP/2 to api.push.apple.com with the
pass certificate) is not built yet: devices then see changes when the wallet refreshes the pass
itself (pull to refresh) or when the pass is downloaded again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Push:
    """One push: the pass type (APNs topic) and a device's push token."""

    pass_type_id: str
    push_token: str


class PushAdapter(Protocol):
    """Delivers pushes; must not raise for a device that is gone (it just unregisters later)."""

    def send(self, pushes: list[Push]) -> None:
        """Deliver every push (best effort: a device that misses one catches up on its next
        refresh)."""


class RecordingPush:
    """Keeps pushes in memory instead of sending them (development and tests)."""

    _lock = threading.Lock()
    sent: list[Push] = []  # noqa: RUF012

    def send(self, pushes: list[Push]) -> None:
        with self._lock:
            RecordingPush.sent.extend(pushes)

    @classmethod
    def clear(cls) -> None:
        with cls._lock:
            cls.sent.clear()


def push_adapter() -> PushAdapter:
    """The configured adapter."""
    adapter: PushAdapter = import_string(settings.WALLET_PUSH_ADAPTER)()
    return adapter
