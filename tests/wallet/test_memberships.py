"""A client's membership in their wallet: only its own client downloads it (404 for another
client, staff, managers, owners, another business; an API token opens no page); the signed file
shows the period's credits, the renewal date and the status, and fails verification once
tampered with; a device learns of a used credit, a cancellation, a renewal and a reactivation;
a cancelled membership's ended period is void; the wallet pass has exactly one source."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from joserfc import jwt

from custodia.accounts.actions import do_create_api_token
from custodia.audit.models import AuditEvent
from custodia.payments.actions.invoices import do_record_payment
from custodia.payments.actions.passes import MEMBERSHIP_PERIOD, do_cancel_membership
from custodia.payments.actions.renewals import do_renew_membership
from custodia.payments.models import ClientMembership, Invoice
from custodia.tenancy.actors import system_actor
from custodia.wallet.models import WalletPass
from custodia.wallet.push import Push, RecordingPush
from custodia.wallet.tasks import EXPIRY_TASK, push_expired
from custodia.wallet.tokens import token_digest
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.payments.support import cancel, complete
from tests.security.support import scalar
from tests.wallet.conftest import PASS_TYPE_ID, TEAM_ID, Joined, Sold
from tests.wallet.support import (
    files_of,
    manifest_matches,
    manifest_of_files,
    openssl_verifies,
    pass_json,
)
from tests.wallet.test_google import SAVE, public_key
from tests.wallet.test_webservice import PUSH_TOKEN, register, registration_url, updated
from tests.web.support import anonymous, logged_in

pytestmark = pytest.mark.django_db


def apple_url(membership_id: object) -> str:
    return f"/app/memberships/{membership_id}/wallet.pkpass"


def google_url(membership_id: object) -> str:
    return f"/app/memberships/{membership_id}/google-wallet/"


def issued(matrix: TenantMatrix, membership_id: object, *, login: Any = None) -> dict[str, Any]:
    """pass.json of a membership downloaded by its client."""
    answer = logged_in(login or matrix.a.client_login).get(apple_url(membership_id))
    assert answer.status_code == 200
    return pass_json(answer.content)


def fields_of(document: dict[str, Any]) -> dict[str, Any]:
    card = document["storeCard"]
    every = [
        *card["primaryFields"],
        *card["secondaryFields"],
        *card["auxiliaryFields"],
        *card["backFields"],
    ]
    return {field["key"]: field for field in every}


# --- Who may download it (written first) ------------------------------------------------------


@pytest.mark.parametrize("role", ["outsider", "owner", "manager", "staff", "other_staff"])
def test_anyone_but_the_client_gets_404(matrix: TenantMatrix, joined: Joined, role: str) -> None:
    actor = matrix.outsider if role == "outsider" else getattr(matrix.a, role)
    browser = logged_in(actor)
    assert browser.get(apple_url(joined.mine.pk)).status_code == 404
    assert browser.get(google_url(joined.mine.pk)).status_code == 404
    act(matrix.a.owner)
    assert WalletPass.objects.count() == 0


def test_a_client_gets_404_for_another_clients_membership_and_bad_ids(
    matrix: TenantMatrix, joined: Joined, sold: Sold
) -> None:
    browser = logged_in(matrix.a.client_login)
    # Another client's, another business's, a pass's id where a membership's belongs, junk.
    for key in (joined.other.pk, joined.outside.pk, sold.mine.pk, "not-a-uuid", "0" * 32):
        assert browser.get(apple_url(key)).status_code == 404, key
        assert browser.get(google_url(key)).status_code == 404, key
    # Business B's client asks for A's client's membership.
    outsider = logged_in(matrix.b.client_login)
    assert outsider.get(apple_url(joined.mine.pk)).status_code == 404
    act(matrix.a.owner)
    assert WalletPass.objects.count() == 0


def test_an_api_token_or_no_login_opens_no_wallet_pass(
    matrix: TenantMatrix, joined: Joined
) -> None:
    act(matrix.a.owner)
    _token, plain = do_create_api_token(actor=matrix.a.owner, name="wallet", scopes=None)
    api = HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}")
    for url in (apple_url(joined.mine.pk), google_url(joined.mine.pk)):
        answer = api.get(url)
        assert answer.status_code == 302 and "/accounts/login/" in answer["Location"], url
        answer = anonymous().get(url)
        assert answer.status_code == 302 and "/accounts/login/" in answer["Location"], url
    act(matrix.a.owner)
    assert WalletPass.objects.count() == 0


# --- The file --------------------------------------------------------------------------------


def test_the_client_downloads_a_signed_membership_of_their_own(
    matrix: TenantMatrix, joined: Joined, wallet_settings: Path, tmp_path: Path
) -> None:
    answer = logged_in(matrix.a.client_login).get(apple_url(joined.mine.pk))
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/vnd.apple.pkpass"
    assert answer["Cache-Control"] == "no-store"
    files = files_of(answer.content)
    assert manifest_matches(files)
    assert openssl_verifies(files, wallet_settings / "ca.pem", tmp_path)

    document = pass_json(answer.content)
    assert (document["passTypeIdentifier"], document["teamIdentifier"]) == (PASS_TYPE_ID, TEAM_ID)
    assert document["organizationName"] == "Alpha"
    fields = fields_of(document)
    assert fields["credits"]["value"] == 4
    assert fields["credits"]["label"] == "Credits left this period"
    assert (fields["pass"]["label"], fields["pass"]["value"]) == ("Membership", "Monthly")
    assert (fields["total"]["label"], fields["total"]["value"]) == ("Credits a month", 4)
    assert fields["expires"]["label"] == "Renews"
    assert fields["expires"]["value"] == joined.mine.current_period_end.isoformat()
    assert fields["status"]["value"] == "Active"
    # It renews: no expiry date for Wallet to grey it out at, not void.
    assert "expirationDate" not in document and document["voided"] is False
    act(matrix.a.owner)
    wallet_pass = WalletPass.objects.get(membership=joined.mine)
    assert wallet_pass.client_pass_id is None
    assert document["serialNumber"] == wallet_pass.serial_number
    assert wallet_pass.auth_digest == token_digest(document["authenticationToken"])
    # Nothing of the client, nor an id of ours.
    text = answer.content.decode("latin-1")
    for secret in (
        matrix.a.client.name,
        matrix.a.client_login.user.email,
        str(matrix.a.client.pk),
        str(joined.mine.pk),
    ):
        assert secret not in text
    actions = AuditEvent.objects.filter(
        tenant_id=matrix.a.owner.tenant_id,
        action__in=["client_membership.read", "wallet_pass.issue"],
    )
    assert sorted(actions.values_list("action", "target_type")) == [
        ("client_membership.read", "clientmembership"),
        ("wallet_pass.issue", "walletpass"),
    ]
    # A second download: the same serial and token, no second wallet pass.
    again = issued(matrix, joined.mine.pk)
    assert again["serialNumber"] == document["serialNumber"]
    assert again["authenticationToken"] == document["authenticationToken"]
    act(matrix.a.owner)
    assert WalletPass.objects.count() == 1


@pytest.mark.parametrize("tampered", ["pass.json", "manifest.json"])
def test_a_tampered_membership_fails_verification(
    matrix: TenantMatrix, joined: Joined, wallet_settings: Path, tmp_path: Path, tampered: str
) -> None:
    files = files_of(logged_in(matrix.a.client_login).get(apple_url(joined.mine.pk)).content)
    document = json.loads(files["pass.json"])
    document["storeCard"]["primaryFields"][0]["value"] = 999
    files["pass.json"] = json.dumps(document).encode()
    if tampered == "manifest.json":
        files["manifest.json"] = manifest_of_files(files)
        assert manifest_matches(files)
        assert not openssl_verifies(files, wallet_settings / "ca.pem", tmp_path)
    else:
        assert not manifest_matches(files)


def test_the_google_link_of_a_membership_verifies_and_shows_only_it(
    matrix: TenantMatrix, joined: Joined, wallet_settings: Path
) -> None:
    answer = logged_in(matrix.a.client_login).get(google_url(joined.mine.pk))
    assert answer.status_code == 302 and answer["Location"].startswith(SAVE)
    claims = jwt.decode(
        answer["Location"].removeprefix(SAVE), public_key(wallet_settings), algorithms=["RS256"]
    ).claims
    (generic,) = claims["payload"]["genericObjects"]
    assert generic["header"]["defaultValue"]["value"] == "Monthly"
    assert generic["state"] == "ACTIVE" and "validTimeInterval" not in generic
    bodies = {module["id"]: module["body"] for module in generic["textModulesData"]}
    assert bodies == {
        "credits": "4 of 4",
        "expires": joined.mine.current_period_end.isoformat()[:10],
        "status": "Active",
    }
    text = json.dumps(claims)
    for secret in (matrix.a.client.name, str(matrix.a.client.pk), str(joined.mine.pk)):
        assert secret not in text


def test_the_portal_offers_both_wallets_for_the_clients_own_membership_only(
    matrix: TenantMatrix, joined: Joined
) -> None:
    page_url = f"/app/memberships/{joined.mine.pk}/"
    page = logged_in(matrix.a.client_login).get(page_url).content.decode()
    assert "Add to Apple Wallet" in page and "Save to Google Wallet" in page
    assert apple_url(joined.mine.pk) in page and google_url(joined.mine.pk) in page
    for role in ("owner", "manager"):
        manager_page = logged_in(getattr(matrix.a, role)).get(page_url)
        assert manager_page.status_code == 200, role
        assert "Apple Wallet" not in manager_page.content.decode(), role
    # Cancelled: no longer offered.
    act(matrix.a.owner)
    do_cancel_membership(joined.mine, actor=matrix.a.owner)
    page = logged_in(matrix.a.client_login).get(page_url).content.decode()
    assert apple_url(joined.mine.pk) not in page


# --- The web service -------------------------------------------------------------------------


def test_a_device_learns_of_a_used_credit_a_cancellation_and_fetches_the_membership(
    matrix: TenantMatrix, joined: Joined, django_capture_on_commit_callbacks: Any
) -> None:
    a = matrix.a
    mine = issued(matrix, joined.mine.pk)
    serial, token = mine["serialNumber"], mine["authenticationToken"]
    device = HttpsClient()
    assert register(device, serial, token).status_code == 201
    tag = updated(device).json()["lastUpdated"]
    assert updated(device, tag).status_code == 204

    # Staff complete the visit: the membership's credit is used (before any pass's), the tag
    # moves and the device is pushed once it commits.
    with django_capture_on_commit_callbacks(execute=True):
        complete(a.visit, a.staff)
    assert RecordingPush.sent == [Push(PASS_TYPE_ID, PUSH_TOKEN)]
    after = updated(device, tag)
    assert after.status_code == 200 and after.json()["serialNumbers"] == [serial]
    tag = after.json()["lastUpdated"]
    auth = {"Authorization": f"ApplePass {token}"}
    url = f"/wallet/v1/passes/{PASS_TYPE_ID}/{serial}"
    latest = device.get(url, headers=auth)
    assert latest.status_code == 200
    assert fields_of(pass_json(latest.content))["credits"]["value"] == 3
    assert pass_json(latest.content)["authenticationToken"] == token

    # The visit cancelled gives the credit back; the membership cancelled: it ends.
    RecordingPush.clear()
    with django_capture_on_commit_callbacks(execute=True):
        cancel(a.visit, a.owner)
    act(a.owner)
    joined.mine.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        do_cancel_membership(joined.mine, actor=a.owner)
    assert RecordingPush.sent == [Push(PASS_TYPE_ID, PUSH_TOKEN)] * 2
    assert updated(device, tag).json()["serialNumbers"] == [serial]
    document = pass_json(device.get(url, headers=auth).content)
    fields = fields_of(document)
    assert fields["credits"]["value"] == 4
    assert (fields["status"]["value"], fields["expires"]["label"]) == ("Cancelled", "Ends")
    assert document["expirationDate"] == joined.mine.current_period_end.isoformat()
    assert document["voided"] is False  # its last period still runs

    # The device's requests read the membership as its client, no login, on record.
    act(a.owner)
    reads = AuditEvent.objects.filter(
        tenant_id=a.owner.tenant_id,
        action="client_membership.read",
        target_type="clientmembership",
        actor_role="client",
        actor_user_id__isnull=True,
    )
    assert reads.exists()


def test_a_renewal_and_a_reactivation_move_the_tag(
    matrix: TenantMatrix, joined: Joined, django_capture_on_commit_callbacks: Any
) -> None:
    a = matrix.a
    mine = issued(matrix, joined.mine.pk)
    serial, token = mine["serialNumber"], mine["authenticationToken"]
    device = HttpsClient()
    assert register(device, serial, token).status_code == 201
    tag = updated(device).json()["lastUpdated"]
    auth = {"Authorization": f"ApplePass {token}"}
    url = f"/wallet/v1/passes/{PASS_TYPE_ID}/{serial}"

    later = timezone.now() + MEMBERSHIP_PERIOD + dt.timedelta(minutes=1)
    with time_machine.travel(later, tick=True):
        job = system_actor(a.owner.tenant_id, task="membership-renewals")
        act(job)
        with django_capture_on_commit_callbacks(execute=True):
            renewal = do_renew_membership(joined.mine, actor=job)
        assert renewal is not None
        renewed = updated(device, tag)
        assert renewed.json()["serialNumbers"] == [serial]
        tag = renewed.json()["lastUpdated"]
        fields = fields_of(pass_json(device.get(url, headers=auth).content))
        assert fields["status"]["value"] == "Past due"

        # The manager records the renewal's payment: active again, in the same transaction.
        act(a.manager)
        invoice = Invoice.objects.get(pk=renewal.pk)
        with django_capture_on_commit_callbacks(execute=True):
            do_record_payment(invoice, actor=a.manager, amount_minor=8000, method="cash")
        act(a.owner)
        assert ClientMembership.objects.get(pk=joined.mine.pk).status == "active"
        assert updated(device, tag).json()["serialNumbers"] == [serial]
        fields = fields_of(pass_json(device.get(url, headers=auth).content))
        assert (fields["status"]["value"], fields["credits"]["value"]) == ("Active", 4)
    assert RecordingPush.sent == [Push(PASS_TYPE_ID, PUSH_TOKEN)] * 2


def test_a_membership_pass_under_another_type_token_or_serial_is_401(
    matrix: TenantMatrix, joined: Joined, sold: Sold
) -> None:
    mine = issued(matrix, joined.mine.pk)
    serial, token = mine["serialNumber"], mine["authenticationToken"]
    theirs = issued(matrix, joined.outside.pk, login=matrix.b.client_login)
    pass_file = pass_json(
        logged_in(matrix.a.client_login).get(f"/app/passes/{sold.mine.pk}/wallet.pkpass").content
    )
    device = HttpsClient()
    wrong_type = registration_url(serial, type_id="pass.other.type")
    assert register(device, serial, token, url=wrong_type).status_code == 401
    # Another business's membership's token, the same client's punch pass's token, a near miss.
    for presented in (
        theirs["authenticationToken"],
        pass_file["authenticationToken"],
        token[:-1] + ("0" if token[-1] != "0" else "1"),
    ):
        assert register(device, serial, presented).status_code == 401
        answer = device.get(
            f"/wallet/v1/passes/{PASS_TYPE_ID}/{serial}",
            headers={"Authorization": f"ApplePass {presented}"},
        )
        assert answer.status_code == 401
    other_type = device.get(
        f"/wallet/v1/passes/pass.other.type/{serial}",
        headers={"Authorization": f"ApplePass {token}"},
    )
    assert other_type.status_code == 401
    assert register(device, pass_file["serialNumber"], token).status_code == 401


# --- Expiry ----------------------------------------------------------------------------------


def test_a_cancelled_membership_whose_period_ended_is_void_and_pushed_once(
    matrix: TenantMatrix, joined: Joined, django_capture_on_commit_callbacks: Any
) -> None:
    a = matrix.a
    mine = issued(matrix, joined.mine.pk)
    serial, token = mine["serialNumber"], mine["authenticationToken"]
    device = HttpsClient()
    assert register(device, serial, token).status_code == 201
    act(a.owner)
    do_cancel_membership(joined.mine, actor=a.owner)
    tag = updated(device).json()["lastUpdated"]
    RecordingPush.clear()

    actor = system_actor(a.owner.tenant_id, task=EXPIRY_TASK)
    act(actor)
    assert push_expired(actor) == 0  # its last period still runs
    with time_machine.travel(joined.mine.current_period_end + dt.timedelta(minutes=5), tick=True):
        act(actor)
        with django_capture_on_commit_callbacks(execute=True):
            assert push_expired(actor) == 1
        act(actor)
        assert push_expired(actor) == 0  # once
        assert updated(device, tag).json()["serialNumbers"] == [serial]
        document = pass_json(
            device.get(
                f"/wallet/v1/passes/{PASS_TYPE_ID}/{serial}",
                headers={"Authorization": f"ApplePass {token}"},
            ).content
        )
        assert document["voided"] is True
    assert RecordingPush.sent == [Push(PASS_TYPE_ID, PUSH_TOKEN)]


def test_an_active_membership_past_its_period_is_left_to_the_renewal(
    matrix: TenantMatrix, joined: Joined
) -> None:
    issued(matrix, joined.mine.pk)
    actor = system_actor(matrix.a.owner.tenant_id, task=EXPIRY_TASK)
    with time_machine.travel(joined.mine.current_period_end + dt.timedelta(minutes=5), tick=True):
        act(actor)
        assert push_expired(actor) == 0


# --- The table: one source, same business, row-level security ---------------------------------


def test_a_wallet_pass_has_exactly_one_source(
    matrix: TenantMatrix, joined: Joined, sold: Sold
) -> None:
    issued(matrix, joined.mine.pk)
    act(matrix.a.owner)
    wallet_pass = WalletPass.objects.get(membership=joined.mine)
    for both_or_none in ({"client_pass_id": sold.mine.pk}, {"membership_id": None}):
        with pytest.raises(IntegrityError), transaction.atomic():
            WalletPass.objects.filter(pk=wallet_pass.pk).update(**both_or_none)


def test_a_wallet_pass_cannot_point_at_another_businesss_membership(
    matrix: TenantMatrix, joined: Joined
) -> None:
    issued(matrix, joined.mine.pk)
    act(matrix.a.owner)
    wallet_pass = WalletPass.objects.get(membership=joined.mine)
    with pytest.raises(IntegrityError), transaction.atomic():
        WalletPass.objects.filter(pk=wallet_pass.pk).update(membership_id=joined.outside.pk)
        # The same-tenant key is checked at commit: check it now.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_each_business_and_role_sees_only_its_own_membership_wallet_rows(
    matrix: TenantMatrix, joined: Joined
) -> None:
    issued(matrix, joined.mine.pk)
    issued(matrix, joined.outside.pk, login=matrix.b.client_login)
    act(matrix.a.owner)
    assert scalar("SELECT count(*) FROM wallet_walletpass WHERE membership_id IS NOT NULL") == 1
    act(matrix.b.owner)
    assert scalar("SELECT count(*) FROM wallet_walletpass") == 1
    for role in ("staff", "other_staff"):
        act(getattr(matrix.a, role))
        assert scalar("SELECT count(*) FROM wallet_walletpass") == 0, role
    act(matrix.a.client_login)
    assert scalar("SELECT count(*) FROM wallet_walletpass") == 1
    act(matrix.b.client_login)
    assert (
        scalar(
            "SELECT count(*) FROM wallet_walletpass WHERE membership_id = %s",
            [str(joined.mine.pk)],
        )
        == 0
    )
