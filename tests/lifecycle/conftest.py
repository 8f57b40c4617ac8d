"""Backups in tests: a scratch database per module, a key pair and stores of the test's own,
drill results in a log of the test's own, and a local S3 (moto's server, real boto3 calls)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyrage
import pytest
from django.conf import settings
from django.db import transaction

from custodia.embedded import admin_connection
from custodia.lifecycle import backups
from custodia.lifecycle.backups import BackupStore, S3Store
from tests import scratch
from tests.factories import build_business
from tests.lifecycle.support import backup_keys


@pytest.fixture(autouse=True)
def private_drill_log(tmp_path: Path, settings: Any) -> Path:
    settings.BACKUP_DRILL_LOG_FILE = tmp_path / "drills.jsonl"
    settings.OPERATOR_EMAILS = []
    # The card vault's backups need a vault of the test's own (test_vault_backups.py turns
    # them on with one); the other tests are about the app's.
    settings.VAULT_BACKUPS = False
    return Path(settings.BACKUP_DRILL_LOG_FILE)


def admin(name: str) -> psycopg.Connection[Any]:
    return admin_connection(settings.ADMIN_DATABASE, name)


def database_exists(name: str) -> bool:
    with admin("postgres") as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            is not None
        )


@pytest.fixture(scope="module")
def scratch_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """A migrated database of this module's own (its business is added by `database`)."""
    with scratch.database("backups", django_db_blocker) as name:
        yield name


@pytest.fixture
def database(scratch_database: str, django_db_blocker: Any) -> Iterator[str]:
    """The scratch database, with one committed business from the first test on."""
    with django_db_blocker.unblock():
        with admin(scratch_database) as conn:
            populated = conn.execute("SELECT count(*) FROM tenancy_business").fetchone()
        if populated == (0,):
            with transaction.atomic():
                build_business("Backedup")
        yield scratch_database


@pytest.fixture
def identities(settings: Any) -> list[pyrage.x25519.Identity]:
    return backup_keys(settings)


@pytest.fixture
def store(tmp_path: Path) -> BackupStore:
    return BackupStore(tmp_path / "backups")


@pytest.fixture
def restored(database: str) -> Iterator[str]:
    """The name of a database to restore into; dropped after the test."""
    name = f"{database}_restored"
    yield name
    backups.drop_database(name)


# --- A local S3 ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# moto takes any credentials; this one is distinctive, so tests can look for it in messages.
SECRET_ACCESS_KEY = "custodia-test-secret-access-key-5f1e"


@dataclass
class LocalS3:
    url: str

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", region_name="us-east-1", endpoint_url=self.url)

    def env(self) -> dict[str, str]:
        """What a `custodia` subprocess needs to reach it."""
        return {
            "AWS_ACCESS_KEY_ID": "AKIACUSTODIATEST0001",
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "CUSTODIA_BACKUP_S3_ENDPOINT_URL": self.url,
            "CUSTODIA_BACKUP_S3_REGION": "us-east-1",
        }


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    """moto's S3 server on a free port; fails (never skips) if it cannot start."""
    binary = Path(sys.executable).parent / "moto_server"
    assert binary.exists(), f"{binary} is missing: moto[server] must be installed"
    port = free_port()
    log = tmp_path_factory.mktemp("moto-s3") / "moto.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(  # noqa: S603  (fixed arguments)
            [str(binary), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, f"moto_server exited with {process.returncode}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        yield LocalS3(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3(local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Any) -> Any:
    """A new bucket of the local S3, with Custodia's settings and credentials pointed at it."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in local_s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    bucket = f"backups-{uuid.uuid4().hex[:12]}"
    local_s3.client().create_bucket(Bucket=bucket)
    settings.BACKUP_S3_BUCKET = bucket
    settings.BACKUP_S3_ENDPOINT_URL = local_s3.url
    settings.BACKUP_S3_REGION = "us-east-1"
    return local_s3


@pytest.fixture
def s3_store(s3: LocalS3) -> S3Store:
    store = backups.database_store()
    assert isinstance(store, S3Store)
    return store
