"""The vault process loads no app code and the app process no vault code but its client; the
`custodia vault` commands run with the vault's settings."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from django.conf import settings

from tests.vault.conftest import LiveVault

VAULT_MODULES = (
    "import django; django.setup()\n"
    "import custodia.vault.urls, custodia.vault.views, custodia.vault.charging\n"
    "from django.apps import apps\n"
    "import json, sys\n"
    "print(json.dumps({'apps': sorted(c.name for c in apps.get_app_configs()),"
    " 'modules': sorted(m for m in sys.modules if m.startswith('custodia'))}))\n"
)
APP_MODULES = (
    "import django; django.setup()\n"
    "import custodia.urls\n"
    "import json, sys\n"
    "print(json.dumps({'modules': sorted(m for m in sys.modules if m.startswith('custodia'))}))\n"
)
ALLOWED_IN_VAULT = {
    "custodia",
    "custodia.core",
    "custodia.core.config",
    "custodia.core.logs",
    "custodia.core.requestctx",
    "custodia.crypto",
    "custodia.crypto.errors",
    "custodia.crypto.kek",
    "custodia.crypto.keyring",
    "custodia.crypto.keystore",
    "custodia.embedded",
}


def run(settings_module: str, code: str) -> dict[str, list[str]]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_vault_process_loads_no_app_code() -> None:
    loaded = run("custodia.vault.settings", VAULT_MODULES)
    assert loaded["apps"] == [
        "custodia.vault",
        "django.contrib.contenttypes",
        "django.contrib.postgres",
    ]
    foreign = [
        module
        for module in loaded["modules"]
        if not module.startswith("custodia.vault") and module not in ALLOWED_IN_VAULT
    ]
    assert foreign == []


def test_the_app_process_loads_no_vault_code() -> None:
    loaded = run("custodia.settings", APP_MODULES)
    assert [module for module in loaded["modules"] if module.startswith("custodia.vault")] == []


def test_vault_commands_use_the_vault_settings() -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "custodia.cli", "vault", "diffsettings"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ROOT_URLCONF = 'custodia.vault.urls'" in done.stdout
    assert "custodia.tenancy" not in done.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["serve", "--port", "0"], "--port must be between 1 and 65535"),
        (["serve", "--certificate", "x.pem"], "Give both --certificate and --keyfile"),
    ],
)
def test_vault_serve_refuses_bad_options(arguments: list[str], message: str) -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "custodia.cli", "vault", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and message in done.stderr


def test_the_vault_serves_a_certificate_of_its_own(vault: LiveVault) -> None:
    """Its own key and certificate (var/tls/vault.pem), not the app's, from the local CA."""
    port = int(vault.url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(vault.ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            served = tls.getpeercert(binary_form=True)
    assert served is not None
    vault_cert = x509.load_der_x509_certificate(served)
    tls_dir = Path(settings.TLS_DIR)
    app_cert = x509.load_pem_x509_certificate((tls_dir / "server.pem").read_bytes())
    own = x509.load_pem_x509_certificate((tls_dir / "vault.pem").read_bytes())
    assert vault_cert == own
    assert vault_cert.public_key() != app_cert.public_key()
    ca = x509.load_pem_x509_certificate(vault.ca.read_bytes())
    vault_cert.verify_directly_issued_by(ca)
