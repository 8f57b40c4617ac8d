"""The app's client: it verifies the vault's certificate, speaks https only, and fails with
clear exceptions."""

from __future__ import annotations

import uuid

import pytest

from custodia.testing.launcher import free_port
from custodia.vault.client import VaultClient, VaultRefused, VaultUnavailable
from tests.vaults import LiveVault


def test_a_certificate_not_from_the_configured_ca_is_refused(vault: LiveVault) -> None:
    # The system's CAs do not know the local CA: the handshake fails, nothing is sent.
    client = VaultClient(vault.url, vault.secret)
    with pytest.raises(VaultUnavailable, match="cannot be reached"):
        client.create_form(uuid.uuid4(), f"{vault.app_origin}/done")


def test_a_vault_that_is_down_is_unavailable(vault: LiveVault) -> None:
    client = VaultClient(f"https://localhost:{free_port()}", vault.secret, ca_file=str(vault.ca))
    with pytest.raises(VaultUnavailable):
        client.get_card(uuid.uuid4(), "card_x")


def test_plain_http_is_refused() -> None:
    with pytest.raises(ValueError, match="https"):
        VaultClient("http://localhost:8444", "x" * 40)


def test_ids_that_are_no_ids_never_leave_the_client(vault: LiveVault) -> None:
    client = vault.client()
    for token in ("../forms", "card_x?y=1", "", "card x"):
        with pytest.raises(VaultRefused) as refused:
            client.get_card(uuid.uuid4(), token)
        assert refused.value.status == 404
