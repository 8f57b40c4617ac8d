"""The read-only payments API: another business's ids (404), staff (403), a client for another
client (404), token scopes (403 without the payment scopes), cursor pages, and nothing writable."""

from __future__ import annotations

from typing import Any

import pytest

from custodia.accounts.actions import do_create_api_token
from custodia.payments.actions.invoices import do_record_payment
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.payments.test_views import Sold, sell

pytestmark = pytest.mark.django_db

API = "/api/v1"


def token_client(actor: Any, scopes: list[str] | None = None) -> HttpsClient:
    act(actor)
    _token, plain = do_create_api_token(actor=actor, name="payments", scopes=scopes)
    return HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}")


def urls(sold: Sold) -> list[str]:
    return [
        f"{API}/passes/{sold.client_pass.pk}",
        f"{API}/invoices/{sold.invoice.pk}",
        f"{API}/invoices/{sold.draft.pk}",
    ]


def test_the_owner_reads_invoices_with_amounts_and_passes_with_uses(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    sold = sell(a)
    act(a.owner)
    do_record_payment(sold.invoice, actor=a.owner, amount_minor=5000, method="cash")
    api = token_client(a.owner)
    answer = api.get(f"{API}/invoices/{sold.invoice.pk}").json()
    assert (answer["number"], answer["status"], answer["currency"]) == (1, "open", "USD")
    assert (answer["total_minor"], answer["paid_minor"], answer["due_minor"]) == (
        20000,
        5000,
        15000,
    )
    assert [line["amount_minor"] for line in answer["lines"]] == [20000]
    assert [payment["method"] for payment in answer["payments"]] == ["cash"]
    answer = api.get(f"{API}/passes/{sold.client_pass.pk}").json()
    assert answer["credits_left"] == 9 and [use["change"] for use in answer["uses"]] == [-1]
    page = api.get(f"{API}/invoices", {"status": "open", "limit": 2}).json()
    assert page["count"] == 3 and len(page["items"]) == 2 and page["next_cursor"]
    rest = api.get(f"{API}/invoices", {"status": "open", "cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert api.get(f"{API}/invoices", {"status": "unpaid"}).status_code == 422
    assert api.get(f"{API}/invoices", {"cursor": "forged"}).status_code == 400
    assert api.get(f"{API}/passes", {"client_id": str(a.client.pk)}).json()["count"] == 1


def test_another_business_gets_404_and_sees_nothing_in_lists(matrix: TenantMatrix) -> None:
    sold = sell(matrix.a)
    api = token_client(matrix.outsider)
    for url in urls(sold):
        answer = api.get(url)
        assert answer.status_code == 404 and answer.json() == {"detail": "Not found."}, url
    for url in (f"{API}/invoices", f"{API}/passes"):
        assert api.get(url).json()["count"] == 0
    assert api.get(f"{API}/invoices", {"client_id": str(matrix.a.client.pk)}).json()["count"] == 0


@pytest.mark.parametrize("role", ["staff", "other_staff"])
def test_staff_are_refused(matrix: TenantMatrix, role: str) -> None:
    sold = sell(matrix.a)
    api = token_client(getattr(matrix.a, role))
    for url in [*urls(sold), f"{API}/invoices", f"{API}/passes"]:
        assert api.get(url).status_code == 403, url


def test_a_client_reads_only_their_own_issued_invoices(matrix: TenantMatrix, web_as: Any) -> None:
    a = matrix.a
    sold = sell(a)
    browser = web_as(a.client_login)  # a client login has no tokens: the session door
    assert browser.get(f"{API}/invoices/{sold.invoice.pk}").status_code == 200
    assert browser.get(f"{API}/passes/{sold.client_pass.pk}").status_code == 200
    for url in (f"{API}/invoices/{sold.draft.pk}", f"{API}/invoices/{sold.other_invoice.pk}"):
        assert browser.get(url).status_code == 404, url
    listed = {item["client_id"] for item in browser.get(f"{API}/invoices").json()["items"]}
    assert listed == {str(a.client.pk)}


def test_a_token_without_the_payment_scopes_is_refused(matrix: TenantMatrix) -> None:
    a = matrix.a
    sold = sell(a)
    narrow = token_client(a.owner, scopes=["clients:record:read"])
    for url in [*urls(sold), f"{API}/invoices", f"{API}/passes"]:
        assert narrow.get(url).status_code == 403, url
    invoices_only = token_client(a.owner, scopes=["payments:invoice:read"])
    assert invoices_only.get(f"{API}/invoices/{sold.invoice.pk}").status_code == 200
    assert invoices_only.get(f"{API}/passes/{sold.client_pass.pk}").status_code == 403


def test_nothing_is_writable_through_the_api(matrix: TenantMatrix) -> None:
    a = matrix.a
    sold = sell(a)
    api = token_client(a.owner)
    for method in ("post", "patch", "put", "delete"):
        for url in (f"{API}/invoices", f"{API}/invoices/{sold.invoice.pk}"):
            assert getattr(api, method)(url, {}, content_type="application/json").status_code in (
                404,
                405,
            ), (method, url)
    act(a.owner)
    sold.invoice.refresh_from_db()
    assert sold.invoice.status == "open"
