"""Attack review of issue 14's races: two starts of an export at once (a double click, two tabs)
by the same owner, and two erasure requests at once by the same client. The second must be
answered plainly while the first one's transaction is still open, not only once it committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connections, transaction

from custodia.clients.models import ErasureRequest
from custodia.core.actor import acting_as
from custodia.lifecycle.erasure import do_request_erasure
from custodia.lifecycle.export.models import Export
from custodia.lifecycle.export.tasks import start_export
from tests import scratch
from tests.factories import TenantMatrix, build_matrix
from tests.jobs.conftest import live

__all__ = ["live"]


@pytest.fixture(scope="module")
def jobs_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """A migrated database of this module's own (committed data, several connections)."""
    with scratch.database("review_race", django_db_blocker) as name:
        yield name


def test_a_second_start_while_the_first_is_uncommitted_is_refused(
    live: str, settings: Any, tmp_path: Any
) -> None:
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "secrets" / "signer.pem"
    with transaction.atomic():
        world: TenantMatrix = build_matrix()
    owner = world.a.owner
    outcome: dict[str, Any] = {}
    second_started = threading.Event()

    def second() -> None:
        try:
            second_started.set()
            with transaction.atomic(), acting_as(owner):
                outcome["export"] = start_export(actor=owner).export
        except ValidationError as exc:
            outcome["refused"] = exc.messages
        finally:
            connections.close_all()

    with transaction.atomic(), acting_as(owner):
        first = start_export(actor=owner).export
        thread = threading.Thread(target=second)
        thread.start()
        second_started.wait(10)
        time.sleep(1.0)  # the second start runs (or waits) while this one is uncommitted
    thread.join(30)
    assert not thread.is_alive()
    with transaction.atomic(), acting_as(owner):
        started = list(Export.objects.filter(started_by=owner.membership))
    assert [export.pk for export in started] == [first.pk], outcome
    assert "still being made" in " ".join(outcome.get("refused", []))


def test_a_second_erasure_request_while_the_first_is_uncommitted_is_the_same_request(
    live: str,
) -> None:
    with transaction.atomic():
        world: TenantMatrix = build_matrix()
    client = world.a.client_login
    outcome: dict[str, Any] = {}
    second_started = threading.Event()

    def second() -> None:
        try:
            second_started.set()
            with transaction.atomic(), acting_as(client):
                outcome["request"] = do_request_erasure(actor=client).pk
        except Exception as exc:  # noqa: BLE001 - what a page would answer with a 500
            outcome["error"] = type(exc).__name__
        finally:
            connections.close_all()

    with transaction.atomic(), acting_as(client):
        first = do_request_erasure(actor=client)
        thread = threading.Thread(target=second)
        thread.start()
        second_started.wait(10)
        time.sleep(1.0)
    thread.join(30)
    assert not thread.is_alive()
    assert outcome == {"request": first.pk}
    with transaction.atomic(), acting_as(world.a.owner):
        assert ErasureRequest.objects.filter(client_id=world.a.client.pk).count() == 1
