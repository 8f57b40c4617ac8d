"""Apple's PassKit web service: a wrong, missing or other pass's token gets 401; a registered
device learns of its pass's change after a visit completed through scheduling's action (a
credit used), a push is recorded, and it fetches the pass anew (304 when unchanged)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils.http import http_date

from custodia.audit.models import AuditEvent
from custodia.core.dbcontext import set_db_context
from custodia.payments.actions.passes import do_void_pass
from custodia.wallet.models import WalletPass, WalletRegistration
from custodia.wallet.push import Push, RecordingPush
from custodia.wallet.tokens import token_digest
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.payments.support import cancel, complete
from tests.security.support import scalar
from tests.wallet.conftest import PASS_TYPE_ID, Sold
from tests.wallet.support import pass_json
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db

DEVICE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
PUSH_TOKEN = "f" * 64


def issued(matrix: TenantMatrix, client_pass_id: object, *, login: Any = None) -> dict[str, Any]:
    """pass.json of a pass downloaded by its client."""
    browser = logged_in(login or matrix.a.client_login)
    answer = browser.get(f"/app/passes/{client_pass_id}/wallet.pkpass")
    assert answer.status_code == 200
    return pass_json(answer.content)


def registration_url(serial: str, device: str = DEVICE, type_id: str = PASS_TYPE_ID) -> str:
    return f"/wallet/v1/devices/{device}/registrations/{type_id}/{serial}"


def register(device: HttpsClient, serial: str, token: str | None, **kwargs: Any) -> Any:
    headers = {} if token is None else {"Authorization": f"ApplePass {token}"}
    return device.post(
        kwargs.pop("url", registration_url(serial)),
        data=json.dumps({"pushToken": PUSH_TOKEN}),
        content_type="application/json",
        headers=headers,
        **kwargs,
    )


def updated(device: HttpsClient, since: str | None = None) -> Any:
    query = "" if since is None else f"?passesUpdatedSince={since}"
    return device.get(f"/wallet/v1/devices/{DEVICE}/registrations/{PASS_TYPE_ID}{query}")


def test_a_wrong_missing_or_other_token_is_401_and_registers_nothing(
    matrix: TenantMatrix, sold: Sold
) -> None:
    mine = issued(matrix, sold.mine.pk)
    serial, token = mine["serialNumber"], mine["authenticationToken"]
    device = HttpsClient()
    for presented in (None, "", "x" * 64, token[:-1] + ("0" if token[-1] != "0" else "1")):
        assert register(device, serial, presented).status_code == 401, presented
    # Another scheme, the token in another header shape.
    answer = device.post(
        registration_url(serial),
        data=json.dumps({"pushToken": PUSH_TOKEN}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 401
    # The right token for another serial, or under another pass type: 401.
    assert register(device, "0" * 32, token).status_code == 401
    wrong_type = registration_url(serial, type_id="pass.other.type")
    assert register(device, serial, token, url=wrong_type).status_code == 401
    assert device.get(f"/wallet/v1/passes/{PASS_TYPE_ID}/{serial}").status_code == 401
    assert device.delete(registration_url(serial)).status_code == 401
    act(matrix.a.owner)
    assert WalletRegistration.objects.count() == 0


def test_another_passs_token_is_401(matrix: TenantMatrix, sold: Sold) -> None:
    mine = issued(matrix, sold.mine.pk)
    # The client of business B downloads theirs; its token does not open A's pass.
    theirs = issued(matrix, sold.outside.pk, login=matrix.b.client_login)
    device = HttpsClient()
    assert register(device, mine["serialNumber"], theirs["authenticationToken"]).status_code == 401
    assert register(device, theirs["serialNumber"], mine["authenticationToken"]).status_code == 401
    answer = device.get(
        f"/wallet/v1/passes/{PASS_TYPE_ID}/{mine['serialNumber']}",
        headers={"Authorization": f"ApplePass {theirs['authenticationToken']}"},
    )
    assert answer.status_code == 401


def test_a_device_registers_learns_of_a_used_credit_and_fetches_the_pass(
    matrix: TenantMatrix, sold: Sold, django_capture_on_commit_callbacks: Any
) -> None:
    a = matrix.a
    mine = issued(matrix, sold.mine.pk)
    serial, token = mine["serialNumber"], mine["authenticationToken"]
    device = HttpsClient()
    assert register(device, serial, token).status_code == 201
    assert register(device, serial, token).status_code == 200  # already registered
    first = updated(device)
    assert first.status_code == 200
    tag = first.json()["lastUpdated"]
    assert first.json()["serialNumbers"] == [serial]
    assert updated(device, tag).status_code == 204  # nothing since

    # The staff member completes the visit through scheduling's action: a credit is used, the
    # tag moves, and the device is pushed once the change commits.
    with django_capture_on_commit_callbacks(execute=True):
        complete(a.visit, a.staff)
    assert RecordingPush.sent == [Push(PASS_TYPE_ID, PUSH_TOKEN)]
    after = updated(device, tag)
    assert after.status_code == 200
    assert after.json()["serialNumbers"] == [serial]
    assert int(after.json()["lastUpdated"]) > int(tag)

    # The latest pass shows 9 credits and keeps the device's token; 304 once it has it.
    auth = {"Authorization": f"ApplePass {token}"}
    latest = device.get(f"/wallet/v1/passes/{PASS_TYPE_ID}/{serial}", headers=auth)
    assert latest.status_code == 200
    assert latest["Content-Type"] == "application/vnd.apple.pkpass"
    document = pass_json(latest.content)
    assert document["storeCard"]["primaryFields"][0]["value"] == 9
    assert document["authenticationToken"] == token
    unchanged = device.get(
        f"/wallet/v1/passes/{PASS_TYPE_ID}/{serial}",
        headers={**auth, "If-Modified-Since": latest["Last-Modified"]},
    )
    assert unchanged.status_code == 304
    stale = device.get(
        f"/wallet/v1/passes/{PASS_TYPE_ID}/{serial}",
        headers={**auth, "If-Modified-Since": http_date(0)},
    )
    assert stale.status_code == 200

    # Cancelled (the credit comes back) and voided: the tag moves each time, pushes follow.
    RecordingPush.clear()
    with django_capture_on_commit_callbacks(execute=True):
        cancel(a.visit, a.owner)
    act(a.owner)
    client_pass = sold.mine
    client_pass.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        do_void_pass(client_pass, actor=a.owner)
    assert RecordingPush.sent == [Push(PASS_TYPE_ID, PUSH_TOKEN)] * 2
    voided = device.get(f"/wallet/v1/passes/{PASS_TYPE_ID}/{serial}", headers=auth)
    assert pass_json(voided.content)["voided"] is True

    # What the device's requests did is on record, by the client's role and no login.
    act(a.owner)
    events = AuditEvent.objects.filter(
        tenant_id=a.owner.tenant_id, action__in=["wallet_device.register", "pass.read"]
    ).filter(actor_role="client", actor_user_id__isnull=True)
    assert {"wallet_device.register", "pass.read"} <= set(events.values_list("action", flat=True))

    # Unregistered: the device's list is empty.
    assert device.delete(registration_url(serial), headers=auth).status_code == 200
    assert updated(device).status_code == 204
    act(a.owner)
    assert WalletRegistration.objects.count() == 0


def test_no_push_for_a_pass_no_wallet_holds(
    matrix: TenantMatrix, sold: Sold, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        complete(matrix.a.visit, matrix.a.staff)
    assert RecordingPush.sent == []


def test_bad_input_is_a_clear_400(matrix: TenantMatrix, sold: Sold) -> None:
    mine = issued(matrix, sold.mine.pk)
    serial, token = mine["serialNumber"], mine["authenticationToken"]
    device = HttpsClient()
    auth = {"Authorization": f"ApplePass {token}"}
    for body in (b"not json", b"{}", b'{"pushToken": 5}', b"[]"):
        answer = device.post(
            registration_url(serial), data=body, content_type="application/json", headers=auth
        )
        assert answer.status_code == 400, body
        assert "pushToken" in answer.json()["detail"]
    answer = device.post(
        registration_url(serial),
        data=json.dumps({"pushToken": "<script>"}),
        content_type="application/json",
        headers=auth,
    )
    assert answer.status_code == 400 and answer.json()["detail"] == "The push token is not valid."
    bad_device = registration_url(serial, device="bad%20device")
    assert register(device, serial, token, url=bad_device).status_code == 400
    assert updated(device, "not-a-tag").status_code == 204
    assert device.get("/wallet/v1/devices/x%20y/registrations/pass.x").status_code == 204
    assert (
        device.post("/wallet/v1/log", data=b"nope", content_type="application/json").status_code
        == 400
    )
    logged = device.post(
        "/wallet/v1/log", data=json.dumps({"logs": ["a problem"]}), content_type="application/json"
    )
    assert logged.status_code == 200


def test_the_token_is_never_stored_and_hand_set_settings_see_nothing(
    matrix: TenantMatrix, sold: Sold
) -> None:
    mine = issued(matrix, sold.mine.pk)
    token = mine["authenticationToken"]
    device = HttpsClient()
    assert register(device, mine["serialNumber"], token).status_code == 201
    act(matrix.a.owner)
    row = WalletPass.objects.values_list("auth_digest", "serial_number").get()
    assert token not in row and row[0] == token_digest(token)
    # A connection of the app role that sets the settings by hand, without the context key:
    # no wallet row, whatever it claims (tenant, owner role, the lookup of this very token).
    set_db_context()
    scalar(
        "SELECT set_config('custodia.tenant_id', %s, true), set_config('custodia.role', 'owner',"
        " true), set_config('custodia.lookup', %s, true)",
        [str(matrix.a.owner.tenant_id), f"wallet-token:{token_digest(token)}"],
    )
    assert scalar("SELECT count(*) FROM wallet_walletpass") == 0
    assert scalar("SELECT count(*) FROM wallet_walletregistration") == 0


def test_each_business_and_role_sees_only_its_own_wallet_rows(
    matrix: TenantMatrix, sold: Sold
) -> None:
    issued(matrix, sold.mine.pk)
    issued(matrix, sold.outside.pk, login=matrix.b.client_login)
    act(matrix.a.owner)
    assert scalar("SELECT count(*) FROM wallet_walletpass") == 1
    act(matrix.b.owner)
    assert scalar("SELECT count(*) FROM wallet_walletpass") == 1
    for role in ("staff", "other_staff"):
        act(getattr(matrix.a, role))
        assert scalar("SELECT count(*) FROM wallet_walletpass") == 0, role
    act(matrix.a.client_login)
    assert scalar("SELECT count(*) FROM wallet_walletpass") == 1


def test_two_changes_within_a_second_are_two_updates(
    matrix: TenantMatrix, sold: Sold, django_capture_on_commit_callbacks: Any
) -> None:
    a = matrix.a
    mine = issued(matrix, sold.mine.pk)
    serial, token = mine["serialNumber"], mine["authenticationToken"]
    device = HttpsClient()
    auth = {"Authorization": f"ApplePass {token}"}
    url = f"/wallet/v1/passes/{PASS_TYPE_ID}/{serial}"
    with django_capture_on_commit_callbacks(execute=True):
        complete(a.visit, a.staff)
    seen = device.get(url, headers=auth)
    with django_capture_on_commit_callbacks(execute=True):
        cancel(a.visit, a.owner)  # at once: the credit comes back
    again = device.get(url, headers={**auth, "If-Modified-Since": seen["Last-Modified"]})
    assert again.status_code == 200
    assert pass_json(again.content)["storeCard"]["primaryFields"][0]["value"] == 10


def test_a_rotated_secret_key_keeps_tokens_until_the_old_key_is_retired(
    matrix: TenantMatrix, sold: Sold, settings: Any
) -> None:
    mine = issued(matrix, sold.mine.pk)
    serial, token = mine["serialNumber"], mine["authenticationToken"]
    device = HttpsClient()
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "rotated-" + "k" * 60
    settings.SECRET_KEY_FALLBACKS = [old_key]
    # The old key among the fallbacks: the same token in the file, and it still opens the pass.
    assert issued(matrix, sold.mine.pk)["authenticationToken"] == token
    assert register(device, serial, token).status_code == 201
    # Retired: the next download issues a new token (recorded); the old one no longer works.
    settings.SECRET_KEY_FALLBACKS = []
    renewed = issued(matrix, sold.mine.pk)
    assert renewed["serialNumber"] == serial and renewed["authenticationToken"] != token
    assert register(device, serial, token).status_code == 401
    assert register(device, serial, renewed["authenticationToken"]).status_code == 200
    act(matrix.a.owner)
    issues = AuditEvent.objects.filter(
        tenant_id=matrix.a.owner.tenant_id, action="wallet_pass.issue"
    )
    assert issues.count() == 2
