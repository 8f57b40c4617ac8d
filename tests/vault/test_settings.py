"""The vault's settings in production: every secret from the environment, no sandbox by
accident, and a message naming the problem (never a value)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PRODUCTION = {
    "CUSTODIA_ENV": "production",
    "CUSTODIA_VAULT_SECRET_KEY": "vault-secret-key-Zq8kV3xP0s9LmT2wB7nR4yC6dF1gH5j",
    "CUSTODIA_VAULT_SIGNING_SECRET": "vault-signing-Q7mX2pL9vB4nR8tY1wC6zD3fH5jK0s",
    "CUSTODIA_VAULT_DB_PASSWORD": "vault-db-password-Xf9Qm2",
    "CUSTODIA_VAULT_GATEWAY": "sandbox",
    "CUSTODIA_VAULT_SANDBOX": "true",
    "CUSTODIA_PUBLIC_URL": "https://custodia.example.com",
    "CUSTODIA_VAULT_URL": "https://vault.example.com",
}
BASE_ENV = {
    name: os.environ[name] for name in ("PATH", "PYTHONPATH") if os.environ.get(name) is not None
}


def load(tmp_path: Path, env: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    clean = {**BASE_ENV, "CUSTODIA_VAR_DIR": str(tmp_path)}
    clean.update({name: value for name, value in env.items() if value is not None})
    code = "import custodia.vault.settings as s; print(s.APP_ORIGIN, s.ALLOWED_HOSTS)"
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60
    )


def test_production_settings_load(tmp_path: Path) -> None:
    done = load(tmp_path, PRODUCTION)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "https://custodia.example.com ['vault.example.com']"
    assert not (tmp_path / "secrets").exists()  # nothing generated in production


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"CUSTODIA_VAULT_SIGNING_SECRET": None}, "CUSTODIA_VAULT_SIGNING_SECRET (or"),
        ({"CUSTODIA_VAULT_SECRET_KEY": None}, "CUSTODIA_VAULT_SECRET_KEY (or"),
        ({"CUSTODIA_VAULT_DB_PASSWORD": None}, "CUSTODIA_VAULT_DB_PASSWORD (or"),
        ({"CUSTODIA_VAULT_SIGNING_SECRET": "short"}, "at least 32 random characters"),
        ({"CUSTODIA_VAULT_SANDBOX": None}, "CUSTODIA_VAULT_GATEWAY is the sandbox in production"),
        ({"CUSTODIA_VAULT_URL": "http://vault.example.com"}, "must be an https:// URL"),
        ({"CUSTODIA_VAULT_KEK_PROVIDER": "vault"}, "must be file, env or aws-kms"),
        (
            {"CUSTODIA_VAULT_GATEWAY": "stripe"},
            "CUSTODIA_VAULT_GATEWAY=stripe needs CUSTODIA_STRIPE_API_KEY",
        ),
    ],
)
def test_production_refuses(tmp_path: Path, change: dict[str, str | None], message: str) -> None:
    done = load(tmp_path, {**PRODUCTION, **change})
    assert done.returncode != 0 and message in done.stderr
    assert "Xf9Qm2" not in done.stderr and "Q7mX2pL9" not in done.stderr


def test_an_unknown_gateway_is_named(tmp_path: Path) -> None:
    env = {**BASE_ENV, "CUSTODIA_VAR_DIR": str(tmp_path), "CUSTODIA_VAULT_GATEWAY": "acme"}
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "custodia.cli", "vault", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "CUSTODIA_VAULT_GATEWAY must be one of sandbox, stripe, not 'acme'" in done.stderr
