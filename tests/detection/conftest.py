"""Detection tests: a local HTTPS receiver standing in for the SIEM (tests/webhooks/receiver.py),
and the settings that let the alert webhook reach it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodia.embedded import ensure_tls
from custodia.webhooks.signing import new_secret
from tests.webhooks.receiver import Receiver, start_receiver


@pytest.fixture(scope="session")
def siem_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(CA, certificate, key) for localhost and 127.0.0.1."""
    directory = tmp_path_factory.mktemp("siem-tls")
    cert, key = ensure_tls(directory)
    return directory / "ca.pem", cert, key


@pytest.fixture
def siem(settings: Any, siem_tls: tuple[Path, Path, Path]) -> Iterator[Receiver]:
    """A SIEM on localhost, configured as the alert webhook with a fresh secret."""
    started = start_receiver(siem_tls[1], siem_tls[2])
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_CA_FILE = str(siem_tls[0])
    settings.WEBHOOKS_TIMEOUT_SECONDS = 2
    settings.ALERT_WEBHOOK_URL = started.url
    settings.ALERT_WEBHOOK_SECRET = new_secret()
    yield started
    started.stop()
