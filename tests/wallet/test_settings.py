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


def push_adapter(tmp_path: Path, env: dict[str, str]) -> str:
    code = "import custodia.settings as s; print(s.WALLET_PUSH_ADAPTER, s.WALLET_APNS_URL)"
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        env={**BASE_ENV, "CUSTODIA_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_production_pushes_through_apns_and_refuses_the_recording_adapter(tmp_path: Path) -> None:
    apns = "custodia.wallet.push.ApnsPush https://api.push.apple.com"
    assert push_adapter(tmp_path, {**PRODUCTION, **APPLE}) == apns
    recording = {"CUSTODIA_WALLET_PUSH_ADAPTER": "custodia.wallet.push.RecordingPush"}
    message = refused(tmp_path, {**PRODUCTION, **APPLE, **recording})
    assert "CUSTODIA_WALLET_PUSH_ADAPTER cannot be the recording adapter" in message
    # Without Apple Wallet there is nothing to push; development records.
    assert push_adapter(tmp_path, {**PRODUCTION, **recording}).startswith(
        "custodia.wallet.push.RecordingPush"
    )
    assert push_adapter(tmp_path, {}).startswith("custodia.wallet.push.RecordingPush")
    sandbox = {"CUSTODIA_WALLET_APNS_URL": "https://api.sandbox.push.apple.com/"}
    assert push_adapter(tmp_path, sandbox).endswith(" https://api.sandbox.push.apple.com")


@pytest.mark.parametrize(
    "url",
    [
        "http://api.push.apple.com",
        "api.push.apple.com",
        "https://",
        "https://apns.example/3/device",
    ],
)
def test_the_apns_url_must_be_an_https_origin(tmp_path: Path, url: str) -> None:
    message = refused(tmp_path, {"CUSTODIA_WALLET_APNS_URL": url})
    assert message.startswith("CUSTODIA_WALLET_APNS_URL must be an https:// URL")


def test_the_apns_ca_file_must_exist(tmp_path: Path) -> None:
    message = refused(tmp_path, {"CUSTODIA_WALLET_APNS_CA_FILE": str(tmp_path / "missing.pem")})
    assert "CUSTODIA_WALLET_APNS_CA_FILE must name a readable CA file" in message
