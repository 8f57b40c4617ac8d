"""Regression: the local server certificate passes sslyze's Mozilla lifespan check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509

from custodia.embedded import ensure_tls


def test_server_certificate_lives_less_than_366_days(tmp_path: Path) -> None:
    """sslyze --mozilla_config=intermediate failed on a 397-day certificate."""
    cert_path, _key_path = ensure_tls(tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    lifespan = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifespan < dt.timedelta(days=366)
    # Still long enough that a developer's certificate is not renewed at every start.
    assert lifespan > dt.timedelta(days=300)
