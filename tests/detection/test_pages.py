"""The owners' alert pages, attacked first: another business's owner, each lesser role, an API
token, no session, the app's database role with hand-set settings; then what an owner sees, the
email every owner gets (real SMTP), and acknowledging."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction

from custodia.accounts.actions import do_create_api_token
from custodia.core.actor import acting_as
from custodia.core.permissions import Permission
from custodia.detection.actions import do_raise_alert, raise_platform_alert
from custodia.detection.models import Alert
from custodia.detection.rules import Finding
from custodia.tenancy.actors import system_actor
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix

MARKER_IP = "203.0.113.77"


def raise_in_a(matrix: TenantMatrix) -> Alert:
    """An id-probing alert in business A, raised as the detection task raises it."""
    actor = system_actor(matrix.a.owner.tenant_id, task="detection")
    finding = Finding(
        rule="id_probing",
        subject=f"person {matrix.a.staff.user.pk}",
        evidence={"count": 12, "window_minutes": 10, "threshold": 10, "address": MARKER_IP},
        event_ids=[101, 102],
    )
    with transaction.atomic(), acting_as(actor):
        alert = do_raise_alert(finding, actor=actor)
    assert alert is not None
    return alert


def pages(alert_id: object) -> list[tuple[str, str]]:
    return [
        ("get", "/app/security/alerts/"),
        ("get", f"/app/security/alerts/{alert_id}/"),
        ("post", f"/app/security/alerts/{alert_id}/acknowledge/"),
    ]


def test_every_other_role_and_business_gets_404(matrix: TenantMatrix, smtp_server: Any) -> None:
    alert = raise_in_a(matrix)
    business = matrix.a
    for actor in (
        matrix.outsider,
        business.manager,
        business.staff,
        business.other_staff,
        business.client_login,
    ):
        page = HttpsClient().act_as(actor)
        for method, url in pages(alert.pk):
            response = getattr(page, method)(url)
            # B's owner has a list of their own (without A's alert); everything else is 404.
            own_list = actor is matrix.outsider and url == "/app/security/alerts/"
            assert response.status_code == (200 if own_list else 404), (actor.role, url)
            assert str(alert.pk) not in response.content.decode()
    act(business.owner)
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is None


def test_no_session_and_an_api_token_get_no_alert(matrix: TenantMatrix, smtp_server: Any) -> None:
    alert = raise_in_a(matrix)
    anonymous = HttpsClient()
    for method, url in pages(alert.pk):
        response = getattr(anonymous, method)(url)
        assert response.status_code in (302, 403), url
        assert str(alert.pk) not in response.content.decode()
    act(matrix.a.owner)
    token, secret = do_create_api_token(
        actor=matrix.a.owner, name="t", scopes=[Permission.AUDIT_READ], days=1
    )
    bearer = HttpsClient(HTTP_AUTHORIZATION=f"Bearer {secret}")
    for method, url in pages(alert.pk):
        response = getattr(bearer, method)(url)
        assert response.status_code in (302, 403), url
        assert str(alert.pk) not in response.content.decode()


def test_the_app_role_with_hand_set_settings_sees_no_alert(
    matrix: TenantMatrix, smtp_server: Any
) -> None:
    """A session with the app role's password alone (an SQL injection) sets the settings by
    hand: row-level security reads the verified context, so it sees no alert."""
    raise_in_a(matrix)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('custodia.tenant_id', %s, true)", [str(matrix.a.owner.tenant_id)]
        )
        cursor.execute("SELECT set_config('custodia.role', 'owner', true)")
        cursor.execute("SELECT count(*) FROM detection_alert")
        assert cursor.fetchone() == (0,)


def test_the_owner_reads_and_acknowledges(matrix: TenantMatrix, smtp_server: Any) -> None:
    alert = raise_in_a(matrix)
    page = HttpsClient().act_as(matrix.a.owner)
    listing = page.get("/app/security/alerts/")
    assert listing.status_code == 200
    assert f"/app/security/alerts/{alert.pk}/" in listing.content.decode()
    assert "Repeated refusals" in listing.content.decode()
    detail = page.get(f"/app/security/alerts/{alert.pk}/")
    text = detail.content.decode()
    assert detail.status_code == 200
    assert "/app/audit/?before=102" in text and "Acknowledge" in text
    assert page.get("/app/security/").content.decode().count("/app/security/alerts/") == 1
    response = page.post(f"/app/security/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 302
    act(matrix.a.owner)
    acknowledged = Alert.objects.get(pk=alert.pk)
    assert acknowledged.acknowledged_at is not None
    assert acknowledged.acknowledged_by_id == matrix.a.owner.user.pk
    # B's owner sees none of A's alerts in their own list.
    other = HttpsClient().act_as(matrix.outsider).get("/app/security/alerts/")
    assert other.status_code == 200 and str(alert.pk) not in other.content.decode()


def test_a_malformed_alert_id_is_404(matrix: TenantMatrix) -> None:
    page = HttpsClient().act_as(matrix.a.owner)
    assert page.get("/app/security/alerts/not-an-id/").status_code == 404
    assert page.post("/app/security/alerts/not-an-id/acknowledge/").status_code == 404


def test_every_owner_is_emailed_a_link_and_no_evidence(
    matrix: TenantMatrix, smtp_server: Any
) -> None:
    alert = raise_in_a(matrix)
    messages = smtp_server.wait_for(1)
    assert [m.recipients for m in messages] == [[matrix.a.owner.user.email]]
    body = messages[0].body
    assert f"/app/security/alerts/{alert.pk}/" in body
    assert "Repeated refusals" in body
    for secret in (MARKER_IP, str(matrix.a.staff.user.pk), matrix.a.client.name):
        assert secret not in body and secret not in messages[0].subject


def test_the_same_rule_and_subject_raise_one_alert_in_the_window(
    matrix: TenantMatrix, smtp_server: Any
) -> None:
    raise_in_a(matrix)
    actor = system_actor(matrix.a.owner.tenant_id, task="detection")
    again = Finding(rule="id_probing", subject=f"person {matrix.a.staff.user.pk}", evidence={})
    with transaction.atomic(), acting_as(actor):
        assert do_raise_alert(again, actor=actor) is None
        assert Alert.objects.count() == 1


@pytest.mark.parametrize("rule", ["credential_stuffing", "audit_chain_broken"])
def test_a_platform_rule_is_never_a_business_alert(matrix: TenantMatrix, rule: str) -> None:
    actor = system_actor(matrix.a.owner.tenant_id, task="detection")
    with transaction.atomic(), acting_as(actor), pytest.raises(ValueError):
        do_raise_alert(Finding(rule=rule, subject="x", evidence={}), actor=actor)


def test_no_owner_reads_a_platform_alert(matrix: TenantMatrix) -> None:
    """A platform-wide alert (no business) is the operators': no owner's query returns it."""
    alert_id = raise_platform_alert(
        Finding(rule="credential_stuffing", subject="address 203.0.113.9", evidence={})
    )
    assert alert_id is not None
    for owner in (matrix.a.owner, matrix.outsider):
        act(owner)
        assert not Alert.objects.filter(pk=alert_id).exists()
        page = HttpsClient().act_as(owner)
        assert page.get(f"/app/security/alerts/{alert_id}/").status_code == 404
