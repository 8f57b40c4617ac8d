"""Wallets not configured: no link on the pass page, 404 at the doors; configured but with a
file missing: ImproperlyConfigured naming the setting, never a half-signed pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from custodia.wallet.config import apple_credentials
from tests.factories import TenantMatrix
from tests.wallet.conftest import Sold
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db


def test_off_means_no_links_and_404(matrix: TenantMatrix, sold: Sold, settings: Any) -> None:
    settings.WALLET_APPLE = {}
    settings.WALLET_GOOGLE = {}
    browser = logged_in(matrix.a.client_login)
    page = browser.get(f"/app/passes/{sold.mine.pk}/").content.decode()
    assert "Wallet" not in page
    assert browser.get(f"/app/passes/{sold.mine.pk}/wallet.pkpass").status_code == 404
    assert browser.get(f"/app/passes/{sold.mine.pk}/google-wallet/").status_code == 404


def test_a_missing_file_is_named(settings: Any, tmp_path: Path) -> None:
    settings.WALLET_APPLE = {
        **settings.WALLET_APPLE,
        "CUSTODIA_WALLET_PASS_KEY_FILE": str(tmp_path / "absent.pem"),
    }
    with pytest.raises(ImproperlyConfigured, match="CUSTODIA_WALLET_PASS_KEY_FILE"):
        apple_credentials()


def test_a_key_that_is_not_the_certificates_is_refused(settings: Any, tmp_path: Path) -> None:
    settings.WALLET_APPLE = {
        **settings.WALLET_APPLE,
        "CUSTODIA_WALLET_PASS_KEY_FILE": settings.WALLET_APPLE[
            "CUSTODIA_WALLET_PASS_KEY_FILE"
        ].replace("pass-key.pem", "ca-key.pem"),
    }
    with pytest.raises(ImproperlyConfigured, match="is not the key of"):
        apple_credentials()
