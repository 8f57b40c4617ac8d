"""Webhook tests: a local CA and certificate for the receivers, receivers on localhost, and the
settings that let deliveries reach them (the development allowance, a short timeout)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, transaction

from custodia.embedded import ensure_tls
from tests import scratch
from tests.factories import TenantMatrix, build_matrix
from tests.webhooks.receiver import Receiver, start_receiver


@pytest.fixture(scope="session")
def receiver_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(CA, certificate, key) for localhost and 127.0.0.1."""
    directory = tmp_path_factory.mktemp("receiver-tls")
    cert, key = ensure_tls(directory)
    return directory / "ca.pem", cert, key


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any, receiver_tls: tuple[Path, Path, Path]) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_CA_FILE = str(receiver_tls[0])
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    settings.WEBHOOKS_RETRY_SCHEDULE = [30, 300]
    settings.WEBHOOKS_DISABLE_AFTER = 2


@pytest.fixture
def receiver(receiver_tls: tuple[Path, Path, Path]) -> Iterator[Receiver]:
    started = start_receiver(receiver_tls[1], receiver_tls[2])
    yield started
    started.stop()


@pytest.fixture(scope="module")
def webhooks_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """A migrated database of the module's own, for real workers and servers (committed data)."""
    with scratch.database("webhooks", django_db_blocker) as name:
        yield name


@pytest.fixture
def world(webhooks_database: str, django_db_blocker: Any) -> Iterator[TenantMatrix]:
    """Two businesses, committed (each test its own: the module's tests do not share rows)."""
    with django_db_blocker.unblock():
        with transaction.atomic():
            matrix = build_matrix()
        yield matrix
        connections.close_all()
