"""The Apple Wallet file of a client's own pass: a zip whose manifest holds every file's sum and
whose detached signature verifies against the pass-signing CA (and fails once anything is
tampered with); what it shows and nothing of the client; who else gets a 404."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custodia import embedded
from custodia.audit.models import AuditEvent
from custodia.wallet.models import WalletPass
from custodia.wallet.tokens import token_digest
from tests.acting import act
from tests.factories import TenantMatrix
from tests.wallet.conftest import PASS_TYPE_ID, TEAM_ID, Sold
from tests.wallet.support import (
    files_of,
    manifest_matches,
    manifest_of_files,
    openssl_verifies,
    pass_json,
)
from tests.web.support import anonymous, logged_in

pytestmark = pytest.mark.django_db


def download_url(pass_id: object) -> str:
    return f"/app/passes/{pass_id}/wallet.pkpass"


def test_the_client_downloads_a_signed_pass_of_their_own(
    matrix: TenantMatrix, sold: Sold, wallet_settings: Path, tmp_path: Path
) -> None:
    answer = logged_in(matrix.a.client_login).get(download_url(sold.mine.pk))
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/vnd.apple.pkpass"
    assert answer["Cache-Control"] == "no-store"
    files = files_of(answer.content)
    assert {"pass.json", "icon.png", "icon@2x.png", "manifest.json", "signature"} <= set(files)
    assert files["icon.png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert manifest_matches(files)
    assert openssl_verifies(files, wallet_settings / "ca.pem", tmp_path)

    document = pass_json(answer.content)
    assert document["passTypeIdentifier"] == PASS_TYPE_ID
    assert document["teamIdentifier"] == TEAM_ID
    assert document["organizationName"] == "Alpha"
    assert document["webServiceURL"].endswith("/wallet/")
    fields = document["storeCard"]
    assert fields["primaryFields"][0]["value"] == 10
    assert fields["secondaryFields"][0]["value"] == "Ten walks"
    assert document["expirationDate"] == sold.mine.expires_at.isoformat()
    # The serial is opaque (not the pass's id); the token is stored only as its digest.
    serial, token = document["serialNumber"], document["authenticationToken"]
    act(matrix.a.owner)
    wallet_pass = WalletPass.objects.get(client_pass=sold.mine)
    assert serial == wallet_pass.serial_number and str(sold.mine.pk) not in answer.content.decode(
        "latin-1"
    )
    assert wallet_pass.auth_digest == token_digest(token) != token
    assert len(token) >= 16
    # Nothing of the client: not their name, nor their email.
    text = json.dumps(document)
    assert matrix.a.client.name not in text
    assert matrix.a.client_login.user.email not in text
    # Read through payments' access (recorded) and issued once (recorded).
    actions = list(
        AuditEvent.objects.filter(tenant_id=matrix.a.owner.tenant_id)
        .filter(action__in=["pass.read", "wallet_pass.issue"])
        .values_list("action", flat=True)
    )
    assert sorted(actions) == ["pass.read", "wallet_pass.issue"]


def test_a_second_download_is_the_same_pass_with_the_same_token(
    matrix: TenantMatrix, sold: Sold
) -> None:
    browser = logged_in(matrix.a.client_login)
    first = pass_json(browser.get(download_url(sold.mine.pk)).content)
    second = pass_json(browser.get(download_url(sold.mine.pk)).content)
    assert first["serialNumber"] == second["serialNumber"]
    assert first["authenticationToken"] == second["authenticationToken"]
    act(matrix.a.owner)
    assert WalletPass.objects.count() == 1


@pytest.mark.parametrize("tampered", ["pass.json", "manifest.json"])
def test_a_tampered_pass_fails_verification(
    matrix: TenantMatrix, sold: Sold, wallet_settings: Path, tmp_path: Path, tampered: str
) -> None:
    answer = logged_in(matrix.a.client_login).get(download_url(sold.mine.pk))
    files = files_of(answer.content)
    document = json.loads(files["pass.json"])
    document["storeCard"]["primaryFields"][0]["value"] = 999
    files["pass.json"] = json.dumps(document).encode()
    if tampered == "manifest.json":
        # The manifest made to match the forged pass.json: its signature no longer verifies.
        files["manifest.json"] = manifest_of_files(files)
        assert manifest_matches(files)
        assert not openssl_verifies(files, wallet_settings / "ca.pem", tmp_path)
    else:
        assert not manifest_matches(files)
        # The signature still covers the untouched manifest, whose sum of pass.json is wrong.
        assert openssl_verifies(files, wallet_settings / "ca.pem", tmp_path)


def test_a_signature_by_another_ca_does_not_verify(
    matrix: TenantMatrix, sold: Sold, tmp_path: Path
) -> None:
    stranger = embedded.ensure_wallet_signing(
        tmp_path / "stranger", pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID
    )
    answer = logged_in(matrix.a.client_login).get(download_url(sold.mine.pk))
    assert not openssl_verifies(files_of(answer.content), stranger / "ca.pem", tmp_path)


@pytest.mark.parametrize("role", ["outsider", "owner", "manager", "staff", "other_staff"])
def test_anyone_but_the_client_gets_404(matrix: TenantMatrix, sold: Sold, role: str) -> None:
    actor = matrix.outsider if role == "outsider" else getattr(matrix.a, role)
    browser = logged_in(actor)
    assert browser.get(download_url(sold.mine.pk)).status_code == 404
    assert browser.get(f"/app/passes/{sold.mine.pk}/google-wallet/").status_code == 404
    act(matrix.a.owner)
    assert WalletPass.objects.count() == 0


def test_a_client_gets_404_for_another_clients_pass_and_bad_ids(
    matrix: TenantMatrix, sold: Sold
) -> None:
    browser = logged_in(matrix.a.client_login)
    for pass_id in (sold.other.pk, sold.outside.pk, "not-a-uuid", "0" * 32):
        assert browser.get(download_url(pass_id)).status_code == 404, pass_id
        assert browser.get(f"/app/passes/{pass_id}/google-wallet/").status_code == 404, pass_id
    act(matrix.a.owner)
    assert WalletPass.objects.count() == 0


def test_logged_out_is_sent_to_log_in(sold: Sold) -> None:
    answer = anonymous().get(download_url(sold.mine.pk))
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]


def test_the_portal_pass_page_offers_both_wallets_to_the_client_only(
    matrix: TenantMatrix, sold: Sold
) -> None:
    page = logged_in(matrix.a.client_login).get(f"/app/passes/{sold.mine.pk}/").content.decode()
    assert "Add to Apple Wallet" in page and download_url(sold.mine.pk) in page
    assert "Save to Google Wallet" in page
    manager_page = logged_in(matrix.a.manager).get(f"/app/passes/{sold.mine.pk}/")
    assert "Apple Wallet" not in manager_page.content.decode()
