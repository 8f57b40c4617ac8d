"""Wallet settings: half a configuration refuses to start; production without any turns the
wallets off; development offers both with the local stand-ins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_settings import BASE_ENV, PRODUCTION, import_settings, refused

APPLE = {
    "CUSTODIA_WALLET_PASS_CERT_FILE": "/etc/custodia/pass.pem",
    "CUSTODIA_WALLET_PASS_KEY_FILE": "/etc/custodia/pass-key.pem",
    "CUSTODIA_WALLET_WWDR_CERT_FILE": "/etc/custodia/wwdr.pem",
    "CUSTODIA_WALLET_PASS_TYPE_ID": "pass.com.example.custodia",
    "CUSTODIA_WALLET_TEAM_ID": "ABCDE12345",
}


def wallets(tmp_path: Path, env: dict[str, str]) -> str:
    code = "import custodia.settings as s; print(bool(s.WALLET_APPLE), bool(s.WALLET_GOOGLE))"
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        env={**BASE_ENV, "CUSTODIA_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("left_out", sorted(APPLE))
def test_half_an_apple_configuration_refuses_to_start(tmp_path: Path, left_out: str) -> None:
    env = {**PRODUCTION, **{k: v for k, v in APPLE.items() if k != left_out}}
    message = refused(tmp_path, env)
    assert message.startswith("Apple Wallet is half configured") and left_out in message


def test_half_a_google_configuration_refuses_to_start(tmp_path: Path) -> None:
    message = refused(tmp_path, {"CUSTODIA_WALLET_GOOGLE_ISSUER_ID": "3388000000000000001"})
    assert "CUSTODIA_WALLET_GOOGLE_SERVICE_ACCOUNT_FILE" in message


def test_a_pass_type_id_must_be_one(tmp_path: Path) -> None:
    env = {**PRODUCTION, **APPLE, "CUSTODIA_WALLET_PASS_TYPE_ID": "com.example"}
    assert "must start with 'pass.'" in refused(tmp_path, env)


def test_production_without_wallet_settings_offers_none(tmp_path: Path) -> None:
    assert import_settings(tmp_path, PRODUCTION).returncode == 0
    assert wallets(tmp_path, PRODUCTION) == "False False"
    assert wallets(tmp_path, {**PRODUCTION, **APPLE}) == "True False"
    assert wallets(tmp_path, {}) == "True True"
