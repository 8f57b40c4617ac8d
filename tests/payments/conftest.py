"""Fixtures of the payments tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings

from tests.vaults import LiveVault, running_vault

OTHER_ORIGIN = "https://stranger.test"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """These tests are about money, not password storage: skip argon2's deliberate cost."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def app_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveVault]:
    """A live vault of this test session that trusts the app's own origin (PUBLIC_URL)."""
    with running_vault(
        tmp_path_factory.mktemp("app-vault"), "app", django_settings.PUBLIC_URL, OTHER_ORIGIN
    ) as live:
        yield live


@pytest.fixture
def live_vault(app_vault: LiveVault, settings: Any) -> LiveVault:
    """The app's settings pointed at the session's live vault."""
    settings.VAULT_URL = app_vault.url
    settings.VAULT_SIGNING_SECRET = app_vault.secret
    settings.VAULT_CA_FILE = str(app_vault.ca)
    return app_vault
