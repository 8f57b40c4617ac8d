"""Embedded PostgreSQL (pgserver), database roles, and the local TLS certificate for `make run`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

APP_ROLE = "custodia_app"
OWNER_ROLE = "custodia_owner"


def embedded_socket_dir(pgdata: Path) -> Path:
    """Where the embedded server listens: recorded in postmaster.pid once it has started."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return pgdata
    return Path(lines[4]) if len(lines) > 4 and lines[4] else pgdata


def start_embedded(pgdata: Path) -> Path:
    """Start (or reuse) the embedded PostgreSQL kept under var/; it outlives this process."""
    runtime = pgdata.parent / "run"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    return Path(server.get_postmaster_info().socket_dir or pgdata)


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server if it runs (fast shutdown); True if it was running."""
    if not (pgdata / "postmaster.pid").exists():
        return False
    runtime = pgdata.resolve().parent / "run"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

    # pgserver runs PostgreSQL as its own system user when started by root; so must pg_ctl.
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user, timeout=60)
    return True


def admin_connection(admin: Mapping[str, str], dbname: str) -> psycopg.Connection:
    """An autocommit connection to `dbname` as the admin role (a superuser: no RLS)."""
    return psycopg.connect(
        dbname=dbname,
        user=admin["USER"] or None,
        password=admin["PASSWORD"] or None,
        host=admin["HOST"] or None,
        port=admin["PORT"] or None,
        autocommit=True,
    )


def provision_database(
    admin: Mapping[str, str], name: str, app_password: str, *, fresh: bool = False
) -> None:
    """Create the two roles and the database owned by custodia_owner; idempotent."""
    with admin_connection(admin, "postgres") as conn:
        _ensure_roles(conn, app_password)
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(name), sql.Identifier(OWNER_ROLE)
                )
            )
            logger.info("created database %s", name)
    with admin_connection(admin, name) as conn:
        statements = [
            "ALTER SCHEMA public OWNER TO {owner}",
            "REVOKE ALL ON SCHEMA public FROM PUBLIC",
            "GRANT USAGE ON SCHEMA public TO {app}",
            "REVOKE CONNECT, TEMPORARY ON DATABASE {db} FROM PUBLIC",
            "GRANT CONNECT ON DATABASE {db} TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public"
            " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public"
            " GRANT USAGE, SELECT ON SEQUENCES TO {app}",
        ]
        for statement in statements:
            conn.execute(
                sql.SQL(statement).format(
                    owner=sql.Identifier(OWNER_ROLE),
                    app=sql.Identifier(APP_ROLE),
                    db=sql.Identifier(name),
                )
            )


# The attributes each role must have: (superuser, bypassrls, createdb, createrole, inherit, login).
ROLE_ATTRIBUTES = {
    # The app role may log in and nothing more: no superuser, no RLS bypass, owns no table.
    APP_ROLE: (
        (False, False, False, False, False, True),
        "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT",
    ),
    OWNER_ROLE: (
        (False, False, False, False, True, False),
        "NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
    ),
}


def _ensure_roles(conn: psycopg.Connection, app_password: str) -> None:
    for role, (wanted, clause) in ROLE_ATTRIBUTES.items():
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolinherit, rolcanlogin"
            " FROM pg_roles WHERE rolname = %s",
            [role],
        ).fetchone()
        if row is None:
            conn.execute(sql.SQL("CREATE ROLE {} " + clause).format(sql.Identifier(role)))
        elif tuple(row) != wanted:
            # Only altered when wrong: changing SUPERUSER/BYPASSRLS needs a superuser, so an admin
            # without it (a managed database) can still run setup against roles made in advance.
            conn.execute(sql.SQL("ALTER ROLE {} " + clause).format(sql.Identifier(role)))
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(APP_ROLE), sql.Literal(app_password) if app_password else sql.SQL("NULL")
        )
    )
    is_superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = is_superuser.fetchone()
    if not (row and row[0]):
        conn.execute(sql.SQL("GRANT {} TO current_user").format(sql.Identifier(OWNER_ROLE)))


# --- Local TLS ------------------------------------------------------------------------------


def ensure_tls(directory: Path, hostnames: tuple[str, ...] = ("localhost",)) -> tuple[Path, Path]:
    """A local CA and a server certificate for localhost, renewed 30 days before expiry."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca_cert_path, ca_key_path = directory / "ca.pem", directory / "ca-key.pem"
    cert_path, key_path = directory / "server.pem", directory / "server-key.pem"
    now = dt.datetime.now(dt.UTC)

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )

    if ca_cert_path.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Custodia local CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
            .sign(ca_key, hashes.SHA256())
        )
        write_key(ca_key_path, ca_key)
        ca_cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        cert_path.unlink(missing_ok=True)

    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if current.not_valid_after_utc - now > dt.timedelta(days=30):
            return cert_path, key_path

    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in hostnames]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "::1")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        # Under 366 days in all, the most Mozilla's TLS configurations allow (sslyze checks it).
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_key(key_path, key)
    cert_path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    logger.info("issued a local TLS certificate for %s", ", ".join(hostnames))
    return cert_path, key_path


def drop_database(admin: Mapping[str, str], name: str) -> None:
    """Drop database `name` if it exists (used for per-run test databases)."""
    with admin_connection(admin, "postgres") as conn:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(statement.format(sql.Identifier(name)))
