"""What never leaves the vault, and who cannot reach its data: the app role cannot connect to
the vault's database nor the vault role to the app's; no card number or security code in any
answer, in the vault's log, or in clear anywhere in its database; destroying a business's key
leaves its cards unreadable."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from custodia.vault.client import VaultRefused
from tests.vaults import SECRETS_TYPED, LiveVault, connect_as, vault_db_password

AMEX = "378282246310005"
AMEX_CODE = "7391"
VISA = "4242424242424242"
# The code standing alone: not inside a hex digest, an id or a UUID, where four digits may occur
# by chance.
CODE_ALONE = re.compile(rf"(?<![0-9A-Za-z_-]){AMEX_CODE}(?![0-9A-Za-z_-])")
# Columns of free text, where a code would be written if anything wrote it.
TEXT_COLUMNS = {"message", "decline_code", "return_url", "brand", "currency"}


def test_the_app_role_cannot_connect_to_the_vault_database(vault: LiveVault) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect_as(settings.APP_DB_ROLE, settings.APP_DB_PASSWORD, vault.db_name)


def test_the_vault_role_cannot_connect_to_the_app_database(vault: LiveVault, db: None) -> None:
    app_database = connection.settings_dict["NAME"]
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect_as("custodia_vault", vault_db_password(), app_database)
    # ... while it can connect to its own, which proves the refusal is the grant, not the login.
    with connect_as("custodia_vault", vault_db_password(), vault.db_name) as own:
        assert own.execute("SELECT current_user").fetchone() == ("custodia_vault",)


def test_the_vault_role_is_no_superuser(vault: LiveVault) -> None:
    rows = vault.sql(
        "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles"
        " WHERE rolname = 'custodia_vault'"
    )
    assert rows == [(False, False, False, False)]


def test_destroying_a_business_makes_its_cards_unreadable(
    vault: LiveVault, business: uuid.UUID, other_business: uuid.UUID
) -> None:
    client = vault.client()
    card = vault.add_card(business, VISA)
    kept = vault.add_card(other_business, VISA)
    assert (vault.keystore / f"{business}.json").exists()
    assert vault.open_card(business, card.token) == "last4 4242"
    client.destroy_business(business)
    assert vault.open_card(business, card.token) == "unreadable"
    assert vault.open_card(other_business, kept.token) == "last4 4242"
    assert not (vault.keystore / f"{business}.json").exists()
    # The sealed values are still there, but nothing can open them; every request is refused.
    assert vault.sql(
        "SELECT number_sealed IS NOT NULL FROM vault_card WHERE token = %s", (card.token,)
    ) == [(True,)]
    for attempt in (
        lambda: client.charge(
            business, card.token, amount=100, currency="EUR", idempotency_key="z"
        ),
        lambda: client.get_card(business, card.token),
        lambda: client.create_form(business, f"{vault.app_origin}/done"),
    ):
        with pytest.raises(VaultRefused) as refused:
            attempt()
        assert refused.value.status == 410
    # Destroying is for that business alone, and can be asked again.
    client.destroy_business(business)
    charge = client.charge(
        other_business, kept.token, amount=100, currency="EUR", idempotency_key="z"
    )
    assert charge.status == "approved"


def test_a_business_can_only_destroy_itself(
    vault: LiveVault, business: uuid.UUID, other_business: uuid.UUID
) -> None:
    client = vault.client()
    card = vault.add_card(other_business, VISA)
    with pytest.raises(VaultRefused) as refused:
        client.request("POST", f"/v1/businesses/{other_business}/destroy", business)
    assert refused.value.status == 404
    assert client.get_card(other_business, card.token).last4 == "4242"


def test_no_card_number_or_code_leaves_the_vault_or_rests_in_clear(
    vault: LiveVault, business: uuid.UUID
) -> None:
    client = vault.client()
    # Every endpoint, with a card whose code is unmistakable.
    form = client.create_form(business, f"{vault.app_origin}/done")
    bad = vault.submit_card(
        form.form_url, number=AMEX, security_code="739", holder_name="Grace Hopper"
    )
    assert bad.status == 400
    card = vault.add_card(business, AMEX, security_code=AMEX_CODE, holder_name="Grace Hopper")
    client.get_card(business, card.token)
    charge = client.charge(
        business, card.token, amount=5000, currency="USD", idempotency_key="leak"
    )
    client.get_charge(business, charge.charge_id)
    client.refund(business, charge.charge_id, amount=100, idempotency_key="leak")
    client.delete_card(business, card.token)
    typed = {AMEX, AMEX_CODE, *SECRETS_TYPED}
    assert "Grace Hopper" not in " ".join(vault.answers[-6:])  # nothing but the form echoes it

    # 1. No answer of the whole session (every test's requests went through `vault.answers`).
    everything = "\n".join(vault.answers)
    assert everything and not [
        secret for secret in typed if len(secret) > 4 and secret in everything
    ]
    assert not CODE_ALONE.search(everything)

    # 2. Nothing in the vault's own output (DEBUG level in these tests).
    log = vault.log.read_text(errors="replace")
    assert not [secret for secret in typed if len(secret) > 4 and secret in log]
    assert not CODE_ALONE.search(log)

    # 3. No column of any table in clear (read as the superuser, past every privilege).
    columns = vault.sql(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public'"
    )
    assert len(columns) > 30
    for table, column in columns:
        values = vault.sql(f'SELECT "{column}"::text FROM "{table}"')  # noqa: S608
        text = "\n".join(str(value) for (value,) in values)
        found = [secret for secret in typed if len(secret) > 4 and secret in text]
        assert not found, f"{table}.{column} holds a card number in clear"
        assert "Grace Hopper" not in text, f"{table}.{column} holds a holder name in clear"
        assert AMEX_CODE not in {str(value) for (value,) in values}, f"{table}.{column}"
        if column in TEXT_COLUMNS:
            assert AMEX_CODE not in text, f"{table}.{column} holds the security code"
