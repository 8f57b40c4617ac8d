"""The owner's webhook pages, attacked first: another business's ids, each lesser role, an API
token, no session, a stale session; then what the owner sees (the secret once, never again)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from custodia.accounts.actions import do_create_api_token
from custodia.audit.models import AuditEvent
from custodia.core.permissions import Permission
from custodia.webhooks.actions import (
    do_create_endpoint,
    do_delete_endpoint,
    do_rotate_endpoint_secret,
    do_send_test_event,
    do_update_endpoint,
)
from custodia.webhooks.models import Delivery, DeliveryStatus, Endpoint
from tests.acting import act, resolve_token
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import add_endpoint, deliveries_of


def endpoint_pages(endpoint_id: object, delivery_id: object) -> list[tuple[str, str]]:
    base = f"/app/business/webhooks/{endpoint_id}"
    return [
        ("get", f"{base}/"),
        ("post", f"{base}/"),
        ("get", f"{base}/rotate/"),
        ("post", f"{base}/rotate/"),
        ("post", f"{base}/test/"),
        ("get", f"{base}/delete/"),
        ("post", f"{base}/delete/"),
        ("post", f"{base}/deliveries/{delivery_id}/resend/"),
    ]


@pytest.fixture
def failed(matrix: TenantMatrix, receiver: Receiver) -> Delivery:
    """An endpoint of business A with one failed (test) delivery."""
    endpoint, _ = add_endpoint(matrix.a.owner, receiver.url)
    receiver.answer(500)
    page = HttpsClient().act_as(matrix.a.owner)
    page.post(f"/app/business/webhooks/{endpoint.pk}/test/")
    [delivery] = deliveries_of(matrix.a.owner)
    assert delivery.status == DeliveryStatus.FAILED
    return delivery


def test_another_business_gets_404_on_every_page_and_changes_nothing(
    matrix: TenantMatrix, web_as: Any, failed: Delivery, receiver: Receiver
) -> None:
    page = web_as(matrix.outsider)
    for method, url in endpoint_pages(failed.endpoint_id, failed.pk):
        response = getattr(page, method)(url, {"url": "https://example.com/", "event_types": []})
        assert response.status_code == 404, url
        assert str(failed.endpoint_id) not in response.content.decode()
    assert len(receiver.received) == 1  # the fixture's test event, nothing since
    act(matrix.a.owner)
    endpoint = Endpoint.objects.get(pk=failed.endpoint_id)
    assert endpoint.url == receiver.url
    assert Delivery.objects.get(pk=failed.pk).status == DeliveryStatus.FAILED
    act(matrix.outsider)
    assert AuditEvent.objects.filter(action="access.denied").exists()


def test_a_delivery_of_another_endpoint_is_not_found(
    matrix: TenantMatrix, web_as: Any, failed: Delivery, receiver: Receiver
) -> None:
    other, _ = add_endpoint(matrix.a.owner, receiver.url)
    page = web_as(matrix.a.owner)
    response = page.post(f"/app/business/webhooks/{other.pk}/deliveries/{failed.pk}/resend/")
    assert response.status_code == 404


@pytest.mark.parametrize("who", ["manager", "staff", "client_login"])
def test_lesser_roles_are_refused_everywhere(
    matrix: TenantMatrix, web_as: Any, failed: Delivery, who: str
) -> None:
    page = web_as(getattr(matrix.a, who))
    for method, url in [
        ("get", "/app/business/webhooks/"),
        ("get", "/app/business/webhooks/add/"),
        ("post", "/app/business/webhooks/add/"),
        *endpoint_pages(failed.endpoint_id, failed.pk),
    ]:
        response = getattr(page, method)(url)
        assert response.status_code == 403, (who, url)
        assert "whsec_" not in response.content.decode()


def test_no_session_is_sent_to_log_in_and_a_token_has_no_door(
    matrix: TenantMatrix, web: HttpsClient, api_as: Any, failed: Delivery
) -> None:
    token = api_as(matrix.a.owner)
    for client in (web, token):
        for method, url in [
            ("get", "/app/business/webhooks/"),
            ("post", "/app/business/webhooks/add/"),
            *endpoint_pages(failed.endpoint_id, failed.pk),
        ]:
            response = getattr(client, method)(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith("/accounts/login/")
    for url in ("/api/v1/webhooks/", f"/api/v1/webhooks/{failed.endpoint_id}/"):
        assert token.get(url).status_code == 404
        assert token.post(url).status_code == 404


def test_bad_ids_are_not_found(matrix: TenantMatrix, web_as: Any) -> None:
    page = web_as(matrix.a.owner)
    for bad in ("not-a-uuid", uuid.uuid4(), "1%27%20OR%201=1"):
        assert page.get(f"/app/business/webhooks/{bad}/").status_code == 404
        assert page.post(f"/app/business/webhooks/{bad}/test/").status_code == 404


def test_adding_shows_the_secret_once_and_needs_a_fresh_step_up(
    matrix: TenantMatrix, web_as: Any, receiver: Receiver
) -> None:
    owner = matrix.a.owner
    page = web_as(owner)
    form = {"url": receiver.url, "description": "Our CRM", "event_types": ["visit.completed"]}
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=30), tick=False):
        stale = page.post("/app/business/webhooks/add/", form)
    assert stale.status_code == 302 and "/step-up/" in stale["Location"]
    act(owner)
    assert not Endpoint.objects.exists()

    made = page.post("/app/business/webhooks/add/", form)
    assert made.status_code == 200
    assert "no-store" in made["Cache-Control"]
    body = made.content.decode()
    start = body.index("whsec_")
    secret = body[start : body.index("<", start)]
    act(owner)
    endpoint = Endpoint.objects.get()
    assert endpoint.secret == secret and endpoint.event_types == ["visit.completed"]
    # Never again: not on the list, the endpoint's page, its log or its rotate page.
    for url in (
        "/app/business/webhooks/",
        f"/app/business/webhooks/{endpoint.pk}/",
        f"/app/business/webhooks/{endpoint.pk}/rotate/",
    ):
        response = page.get(url)
        assert response.status_code == 200
        assert secret not in response.content.decode() and "whsec_" not in response.content.decode()


def test_bad_input_gets_400_with_the_reason(
    matrix: TenantMatrix, web_as: Any, settings: Any
) -> None:
    page = web_as(matrix.a.owner)
    response = page.post(
        "/app/business/webhooks/add/",
        {"url": "http://example.com/hook", "event_types": ["visit.created"]},
    )
    assert response.status_code == 400 and "https only" in response.content.decode()
    response = page.post(
        "/app/business/webhooks/add/", {"url": "https://example.com/", "event_types": ["nope"]}
    )
    assert response.status_code == 400
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = page.post(
        "/app/business/webhooks/add/",
        {"url": "https://127.0.0.1/hook", "event_types": ["visit.created"]},
    )
    assert response.status_code == 400
    assert "public internet addresses only" in response.content.decode()
    act(matrix.a.owner)
    assert not Endpoint.objects.exists()


def test_the_log_shows_deliveries_and_its_read_is_recorded(
    matrix: TenantMatrix, web_as: Any, failed: Delivery
) -> None:
    page = web_as(matrix.a.owner)
    response = page.get(f"/app/business/webhooks/{failed.endpoint_id}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "webhook.test" in body and str(failed.event_id) in body and "Send again" in body
    act(matrix.a.owner)
    [read] = AuditEvent.objects.filter(action="webhook.log.read")
    assert read.target_id == str(failed.endpoint_id) and read.detail == {"count": 1}


def test_test_send_again_rotate_change_and_delete_through_the_pages(
    matrix: TenantMatrix, web_as: Any, failed: Delivery, receiver: Receiver
) -> None:
    owner = matrix.a.owner
    page = web_as(owner)
    base = f"/app/business/webhooks/{failed.endpoint_id}"
    tested = page.post(f"{base}/test/", follow=True)
    assert "The test event was delivered (HTTP 200)" in tested.content.decode()

    resent = page.post(f"{base}/deliveries/{failed.pk}/resend/")
    assert resent.status_code == 302
    act(owner)
    assert Delivery.objects.get(pk=failed.pk).status == DeliveryStatus.PENDING
    again = page.post(f"{base}/deliveries/{failed.pk}/resend/")
    assert again.status_code == 400 and "Only a failed delivery" in again.content.decode()

    rotated = page.post(f"{base}/rotate/")
    assert rotated.status_code == 200 and "whsec_" in rotated.content.decode()
    act(owner)
    endpoint = Endpoint.objects.get(pk=failed.endpoint_id)
    assert endpoint.previous_expires_at is not None

    changed = page.post(
        f"{base}/",
        {"url": receiver.url, "description": "Renamed", "event_types": ["visit.created"]},
    )
    assert changed.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.description, endpoint.is_active) == ("Renamed", False)

    deleted = page.post(f"{base}/delete/")
    assert deleted.status_code == 302 and deleted["Location"] == "/app/business/webhooks/"
    act(owner)
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"webhook.test", "webhook.resend", "webhook.rotate", "webhook.update"} <= actions
    assert "webhook.delete" in actions


def test_rotating_and_changing_the_url_need_a_fresh_step_up(
    matrix: TenantMatrix, web_as: Any, receiver: Receiver
) -> None:
    owner = matrix.a.owner
    endpoint, _ = add_endpoint(owner, receiver.url)
    page = web_as(owner)
    base = f"/app/business/webhooks/{endpoint.pk}"
    moved = {"url": receiver.url + "/elsewhere", "event_types": ["visit.created"]}
    renamed = {"url": receiver.url, "description": "Renamed", "event_types": ["visit.created"]}
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=30), tick=False):
        for url, form in ((f"{base}/rotate/", {}), (f"{base}/", moved)):
            response = page.post(url, form)
            assert response.status_code == 302 and "/step-up/" in response["Location"], url
        # What changes neither where events go nor how they are signed needs none.
        assert page.post(f"{base}/", renamed).status_code == 302
    act(owner)
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description) == (receiver.url, "Renamed")
    assert endpoint.previous_expires_at is None


def test_an_api_token_cannot_manage_webhooks_through_any_door(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    owner = matrix.a.owner
    endpoint, _ = add_endpoint(owner, receiver.url)
    act(owner)
    _token, plain = do_create_api_token(actor=owner, name="integration")
    token = resolve_token(plain)
    assert token is not None and token.can(Permission.WEBHOOKS_MANAGE)
    for attempt_it in (
        lambda: do_update_endpoint(endpoint, actor=token, description="Hijacked"),
        lambda: do_update_endpoint(endpoint, actor=token, is_active=False),
        lambda: do_send_test_event(endpoint, actor=token),
        lambda: do_delete_endpoint(endpoint, actor=token),
        lambda: do_rotate_endpoint_secret(endpoint, actor=token),
        lambda: do_create_endpoint(actor=token, url=receiver.url, event_types=["visit.created"]),
    ):
        with pytest.raises(PermissionDenied):
            attempt_it()
    act(owner)
    endpoint.refresh_from_db()
    assert (endpoint.description, endpoint.is_active) == ("CRM", True)
    assert receiver.received == []
