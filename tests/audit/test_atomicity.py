"""An event and what it records commit together or not at all."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.utils import DatabaseError

from custodia.clients.actions import do_create_client, do_update_client
from custodia.clients.models import Client
from custodia.core import audit as audit_actions
from custodia.core.dbcontext import set_db_context
from tests.acting import act
from tests.api.conftest import send
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db


def events_of(matrix: TenantMatrix) -> list[tuple[str, Any]]:
    a = matrix.a
    set_db_context(tenant_id=a.owner.tenant_id, user_id=a.owner.user.pk, role="owner")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT action, detail FROM audit_auditevent WHERE tenant_id = %s ORDER BY id",
            [a.owner.tenant_id],
        )
        rows = cursor.fetchall()
    act(a.owner)
    return rows


def break_trail(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the trail cannot be written (a column that does not exist), by either of
    its statements (an event alone, or a row read and recorded together)."""
    for statement in ("INSERT_SQL", "INSERT_FOUND_SQL"):
        broken = getattr(audit_actions, statement).replace("purpose", "no_such_column")
        monkeypatch.setattr(audit_actions, statement, broken)


def test_a_refused_write_leaves_no_event(matrix: TenantMatrix) -> None:
    before = events_of(matrix)
    with pytest.raises(ValidationError):
        do_update_client(matrix.a.client, actor=matrix.a.owner, email="not an address")
    assert events_of(matrix) == before


def test_a_write_that_fails_in_the_database_takes_its_event_with_it(
    matrix: TenantMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = events_of(matrix)
    # The home-access row fails after the client row and its event were written.
    monkeypatch.setattr(
        "custodia.clients.actions.HomeAccess.objects.create",
        lambda **kwargs: (_ for _ in ()).throw(DatabaseError("disk full")),
    )
    with pytest.raises(DatabaseError), transaction.atomic():
        do_create_client(actor=matrix.a.owner, name="Half Written")
    act(matrix.a.owner)
    assert events_of(matrix) == before
    assert not Client.objects.filter(name="Half Written").exists()


def test_an_event_that_cannot_be_written_stops_the_write(
    matrix: TenantMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_trail(monkeypatch)
    act(matrix.a.owner)
    with pytest.raises(DatabaseError), transaction.atomic():
        do_create_client(actor=matrix.a.owner, name="Unrecorded")
    act(matrix.a.owner)
    assert not Client.objects.filter(name="Unrecorded").exists()


def test_through_the_api_an_audit_failure_is_a_500_that_changes_nothing(
    matrix: TenantMatrix, api_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_as(matrix.a.owner)
    break_trail(monkeypatch)
    response = send(api, "POST", "/clients", {"name": "Unrecorded"})
    assert response.status_code == 500
    act(matrix.a.owner)
    assert not Client.objects.filter(name="Unrecorded").exists()


def test_a_read_that_cannot_be_recorded_is_not_answered(
    matrix: TenantMatrix, api_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_as(matrix.a.owner)
    break_trail(monkeypatch)
    response = send(api, "GET", f"/clients/{matrix.a.client.pk}")
    assert response.status_code == 500
    assert b"Alpha Client" not in response.content


def test_reads_commit_without_waiting_for_the_disk_and_writes_wait(
    matrix: TenantMatrix, api_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET and HEAD (session or token) set synchronous_commit off for their transaction;
    anything else keeps it on (docs/audit.md, the durability trade-off)."""
    seen: dict[str, str] = {}

    def spying_on(original: Any) -> Any:
        def spy(*args: Any, **kwargs: Any) -> Any:
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('synchronous_commit')")
                who = kwargs["actor"].user.email if "actor" in kwargs else "-"
                seen[who] = cursor.fetchone()[0]
            return original(*args, **kwargs)

        return spy

    api = api_as(matrix.a.owner)
    # The write records an event; the read is read and recorded by one statement.
    monkeypatch.setattr("custodia.clients.actions.record", spying_on(audit_actions.record))
    monkeypatch.setattr("custodia.clients.access.read_one", spying_on(audit_actions.read_one))
    # The write first: in a test both requests share the test's transaction, where a setting
    # made for the transaction outlives the request that made it.
    send(api, "PATCH", f"/clients/{matrix.a.client.pk}", {"notes": "Changed"})
    assert seen.pop(matrix.a.owner.user.email) == "on"
    send(api, "GET", f"/clients/{matrix.a.client.pk}")
    assert seen.pop(matrix.a.owner.user.email) == "off"
