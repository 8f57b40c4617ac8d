"""What a person sees when a stored value cannot be read: a clear 409 or 410, never a 500,
never the bytes or anything decrypted; the failure is logged with ids only."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from custodia.crypto import keystore
from custodia.crypto.keyring import forget
from tests.audit.support import chain_events
from tests.crypto.support import plant, stored
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def swap_emails(matrix: TenantMatrix) -> bytes:
    """Alpha's other client's sealed email copied over its main client's (a swapped ciphertext)."""
    a = matrix.a
    other = stored(a.owner, "clients_client", "email", a.other_client.pk)
    plant(a.owner, "clients_client", "email", a.client.pk, other)
    return other


def assert_no_details(body: str, matrix: TenantMatrix, blob: bytes) -> None:
    for secret in (matrix.a.client.email, matrix.a.client.notes, blob.hex(), "Traceback"):
        assert secret not in body


def test_the_api_answers_409_for_a_swapped_ciphertext(
    matrix: TenantMatrix, api_as: Any, caplog: pytest.LogCaptureFixture
) -> None:
    blob = swap_emails(matrix)
    with caplog.at_level(logging.ERROR, logger="custodia.crypto"):
        answer = api_as(matrix.a.owner).get(f"/api/v1/clients/{matrix.a.client.pk}")
    assert answer.status_code == 409
    body = answer.json()
    assert body["code"] == "integrity_error"
    assert body["detail"].startswith("This record failed an integrity check and is not shown.")
    assert answer["X-Request-ID"] in body["detail"]
    assert_no_details(answer.content.decode(), matrix, blob)
    failures = [r for r in caplog.records if r.name == "custodia.crypto"]
    assert [r.getMessage() for r in failures] == [
        f"integrity failure: clients_client.email row {matrix.a.client.pk} "
        f"tenant {matrix.a.owner.tenant_id}"
    ]
    # The list that shows the record fails the same way; the other client still reads.
    assert api_as(matrix.a.owner).get("/api/v1/clients").status_code == 409
    other = api_as(matrix.a.owner).get(f"/api/v1/clients/{matrix.a.other_client.pk}")
    assert other.status_code == 200


def test_the_page_answers_409_for_a_swapped_ciphertext(matrix: TenantMatrix, web_as: Any) -> None:
    blob = swap_emails(matrix)
    page = web_as(matrix.a.owner).get(f"/app/clients/{matrix.a.client.pk}/")
    assert page.status_code == 409
    html = page.content.decode()
    assert "Cannot show this record" in html
    assert "failed an integrity check" in html
    assert_no_details(html, matrix, blob)
    # The request's writes are undone like a 500's: the record was not shown, so its read
    # event goes too.
    reads = [
        e
        for e in chain_events(matrix.a.owner)
        if e["action"] == "client.read" and e["request_id"] == page["X-Request-ID"]
    ]
    assert reads == []


def test_data_whose_key_is_gone_answers_410(matrix: TenantMatrix, api_as: Any) -> None:
    a = matrix.a
    browser = api_as(a.owner)
    keystore.destroy(a.owner.tenant_id)
    forget(a.owner.tenant_id)
    answer = browser.get(f"/api/v1/clients/{a.client.pk}")
    assert answer.status_code == 410
    assert answer.json()["code"] == "key_destroyed"
    assert "encryption key that protected it was destroyed" in answer.json()["detail"]
