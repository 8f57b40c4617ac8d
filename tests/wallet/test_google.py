"""The Google Wallet save link: a JWT signed RS256 by the service account's key, which verifies
with its public key alone, and holds what the pass shows and nothing more of the client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import RSAKey

from custodia import embedded
from tests.factories import TenantMatrix
from tests.wallet.conftest import PASS_TYPE_ID, TEAM_ID, Sold
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db

SAVE = "https://pay.google.com/gp/v/save/"


def public_key(directory: Path) -> RSAKey:
    account = json.loads((directory / "google-service-account.json").read_text())
    private = RSAKey.import_key(account["private_key"])
    return RSAKey.import_key(private.as_pem(private=False))


def test_the_save_link_verifies_and_shows_only_the_pass(
    matrix: TenantMatrix, sold: Sold, wallet_settings: Path
) -> None:
    answer = logged_in(matrix.a.client_login).get(f"/app/passes/{sold.mine.pk}/google-wallet/")
    assert answer.status_code == 302 and answer["Location"].startswith(SAVE)
    token = answer["Location"].removeprefix(SAVE)
    decoded = jwt.decode(token, public_key(wallet_settings), algorithms=["RS256"])
    assert decoded.header["alg"] == "RS256"
    claims = decoded.claims
    assert claims["aud"] == "google" and claims["typ"] == "savetowallet"
    (generic,) = claims["payload"]["genericObjects"]
    assert generic["id"].startswith("3388000000012345678.")
    assert generic["header"]["defaultValue"]["value"] == "Ten walks"
    assert generic["cardTitle"]["defaultValue"]["value"] == "Alpha"
    assert generic["state"] == "ACTIVE"
    bodies = {module["id"]: module["body"] for module in generic["textModulesData"]}
    assert bodies["credits"] == "10 of 10"
    # Nothing of the client: not their name, email, nor any id of ours.
    text = json.dumps(claims)
    for secret in (
        matrix.a.client.name,
        matrix.a.client_login.user.email,
        str(matrix.a.client.pk),
        str(sold.mine.pk),
    ):
        assert secret not in text


def test_another_key_does_not_verify_it(matrix: TenantMatrix, sold: Sold, tmp_path: Path) -> None:
    stranger = embedded.ensure_wallet_signing(
        tmp_path / "stranger", pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID
    )
    answer = logged_in(matrix.a.client_login).get(f"/app/passes/{sold.mine.pk}/google-wallet/")
    token = answer["Location"].removeprefix(SAVE)
    with pytest.raises(BadSignatureError):
        jwt.decode(token, public_key(stranger), algorithms=["RS256"])
