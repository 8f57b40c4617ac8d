"""The development stand-ins `custodia setup` makes: made once (a second run changes nothing),
the pass certificate issued by the local CA for the pass type, keys readable by their owner
only."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from custodia import embedded


def test_made_once_and_issued_by_the_local_ca(tmp_path: Path) -> None:
    directory = tmp_path / "wallet"
    embedded.ensure_wallet_signing(directory, pass_type_id="pass.a.b", team_id="TEAM")
    first = {path.name: path.read_bytes() for path in directory.iterdir()}
    embedded.ensure_wallet_signing(directory, pass_type_id="pass.a.b", team_id="TEAM")
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == first
    assert set(first) == {
        "ca.pem",
        "ca-key.pem",
        "pass.pem",
        "pass-key.pem",
        "google-service-account.json",
    }
    for secret in ("ca-key.pem", "pass-key.pem", "google-service-account.json"):
        assert (directory / secret).stat().st_mode & 0o077 == 0, secret
    ca = x509.load_pem_x509_certificate(first["ca.pem"])
    certificate = x509.load_pem_x509_certificate(first["pass.pem"])
    certificate.verify_directly_issued_by(ca)
    assert certificate.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == "pass.a.b"
