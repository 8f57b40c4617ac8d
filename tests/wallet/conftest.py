"""Fixtures of the wallet tests: development wallet credentials made once in a temporary
directory (the same helper `custodia setup` uses), a client's pass sold or membership started,
the pushes recorded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from custodia import embedded
from custodia.payments.actions.passes import do_sell_pass, do_start_membership
from custodia.payments.models import ClientMembership, ClientPass
from custodia.wallet.push import RecordingPush
from tests.acting import act
from tests.factories import TenantMatrix
from tests.payments.support import catalog

PASS_TYPE_ID = "pass.test.custodia"
TEAM_ID = "TESTTEAM01"


@pytest.fixture(scope="session")
def wallet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wallet") / "wallet"
    return embedded.ensure_wallet_signing(directory, pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID)


@pytest.fixture(autouse=True)
def wallet_settings(settings: Any, wallet_dir: Path) -> Iterator[Path]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.WALLET_APPLE = {
        "CUSTODIA_WALLET_PASS_CERT_FILE": str(wallet_dir / "pass.pem"),
        "CUSTODIA_WALLET_PASS_KEY_FILE": str(wallet_dir / "pass-key.pem"),
        "CUSTODIA_WALLET_WWDR_CERT_FILE": str(wallet_dir / "ca.pem"),
        "CUSTODIA_WALLET_PASS_TYPE_ID": PASS_TYPE_ID,
        "CUSTODIA_WALLET_TEAM_ID": TEAM_ID,
    }
    settings.WALLET_GOOGLE = {
        "CUSTODIA_WALLET_GOOGLE_ISSUER_ID": "3388000000012345678",
        "CUSTODIA_WALLET_GOOGLE_SERVICE_ACCOUNT_FILE": str(
            wallet_dir / "google-service-account.json"
        ),
    }
    settings.WALLET_PUSH_ADAPTER = "custodia.wallet.push.RecordingPush"
    RecordingPush.clear()
    yield wallet_dir
    RecordingPush.clear()


@dataclass
class Sold:
    mine: ClientPass  # the client's (of business A)
    other: ClientPass  # the other client's, same business
    outside: ClientPass  # business B's client's


@pytest.fixture
def sold(matrix: TenantMatrix) -> Sold:
    a_kinds, b_kinds = catalog(matrix.a), catalog(matrix.b)
    act(matrix.a.owner)
    mine, _ = do_sell_pass(matrix.a.client, a_kinds.ten, actor=matrix.a.owner)
    other, _ = do_sell_pass(matrix.a.other_client, a_kinds.ten, actor=matrix.a.owner)
    act(matrix.b.owner)
    outside, _ = do_sell_pass(matrix.b.client, b_kinds.ten, actor=matrix.b.owner)
    return Sold(mine, other, outside)


@dataclass
class Joined:
    mine: ClientMembership  # the client's (of business A)
    other: ClientMembership  # the other client's, same business
    outside: ClientMembership  # business B's client's


@pytest.fixture
def joined(matrix: TenantMatrix) -> Joined:
    a_kinds, b_kinds = catalog(matrix.a), catalog(matrix.b)
    act(matrix.a.owner)
    mine, _ = do_start_membership(matrix.a.client, a_kinds.plan, actor=matrix.a.owner)
    other, _ = do_start_membership(matrix.a.other_client, a_kinds.plan, actor=matrix.a.owner)
    act(matrix.b.owner)
    outside, _ = do_start_membership(matrix.b.client, b_kinds.plan, actor=matrix.b.owner)
    return Joined(mine, other, outside)
