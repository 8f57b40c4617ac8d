"""Backups on S3-compatible storage, against moto's server (real boto3 calls): the same
promises as a directory. A backup is listed only once its signed manifest exists; an upload
killed mid-way (kill -9) leaves nothing listed and the next run succeeds and cleans up; a missing
bucket is a clear error; a tampered object is detected; prune deletes what is due there too.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from custodia.lifecycle import backups
from custodia.lifecycle.backups import BackupError, S3Store
from tests.lifecycle.conftest import LocalS3, admin, database_exists
from tests.lifecycle.support import write_identity


def keys_in(s3: LocalS3, bucket: str) -> list[str]:
    answer = s3.client().list_objects_v2(Bucket=bucket)
    return sorted(entry["Key"] for entry in answer.get("Contents", []))


def test_a_backup_on_s3_restores_what_its_manifest_promised(
    database: str, s3_store: S3Store, s3: LocalS3, identities: Any, restored: str, tmp_path: Path
) -> None:
    backup = backups.run_backup(s3_store)
    assert s3_store.backups() == [backup]
    prefix = settings.BACKUP_S3_PREFIX
    assert keys_in(s3, s3_store.bucket) == [
        f"{prefix}{backup.id}.dump.age",
        f"{prefix}{backup.id}.manifest.json",
    ]
    stored = s3.client().get_object(Bucket=s3_store.bucket, Key=f"{prefix}{backup.id}.dump.age")
    content = stored["Body"].read()
    assert content.startswith(b"age-encryption.org/v1") and b"PGDMP" not in content
    assert len(content) == backup.manifest["dump"]["size"]

    backups.verify_backup(backup, identities)
    counts = backups.restore_backup(backup, identities, restored)
    assert counts == backup.manifest["tables"]
    assert set(backup.manifest["checksums"]) == set(counts)

    # The command uses the bucket when one is set (no --dir).
    identity = write_identity(tmp_path / "identity.txt", identities[0])
    call_command("backup", "verify", backup.id, "--identity", str(identity))
    call_command("backup", "list")


def test_a_tampered_object_on_s3_is_detected(
    database: str, s3_store: S3Store, s3: LocalS3, identities: Any, restored: str
) -> None:
    backup = backups.run_backup(s3_store)
    key = f"{s3_store.prefix}{backup.payload_name}"
    content = bytearray(s3.client().get_object(Bucket=s3_store.bucket, Key=key)["Body"].read())
    content[len(content) // 2] ^= 1
    s3.client().put_object(Bucket=s3_store.bucket, Key=key, Body=bytes(content))
    with pytest.raises(BackupError, match="does not match the manifest"):
        backups.restore_backup(backup, identities, restored)
    assert not database_exists(restored)
    manifest_key = f"{s3_store.prefix}{backup.manifest_name}"
    text = s3.client().get_object(Bucket=s3_store.bucket, Key=manifest_key)["Body"].read()
    s3.client().put_object(
        Bucket=s3_store.bucket, Key=manifest_key, Body=text.replace(b'"engine"', b'"engine "')
    )
    [listed] = s3_store.backups()
    assert listed.problem is not None and "altered" in listed.problem


def test_a_missing_bucket_is_a_clear_error_and_older_backups_stay(
    database: str, s3_store: S3Store, s3: LocalS3, identities: Any, settings: Any
) -> None:
    older = backups.run_backup(s3_store)
    settings.BACKUP_S3_BUCKET = "no-such-bucket-here"
    with pytest.raises(CommandError, match=r"s3://no-such-bucket-here/.*NoSuchBucket"):
        call_command("backup", "run")
    assert s3_store.backups() == [older]


def test_an_unreachable_endpoint_is_a_clear_error(
    s3: LocalS3, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    settings.BACKUP_S3_ENDPOINT_URL = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match=r"Cannot list s3://.*EndpointConnectionError"):
        call_command("backup", "list")


def wait_for(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def big_database(database: str) -> Any:
    """The scratch database with 40 MB of incompressible rows: an upload of several parts."""
    with admin(database) as conn:
        conn.execute("CREATE TABLE zz_filler (id int PRIMARY KEY, blob bytea)")
        for number in range(40):
            conn.execute("INSERT INTO zz_filler VALUES (%s, %s)", [number, os.urandom(1 << 20)])
    yield database
    with admin(database) as conn:
        conn.execute("DROP TABLE zz_filler")


def test_an_upload_killed_mid_way_is_never_listed_and_the_next_run_succeeds(
    big_database: str, s3_store: S3Store, s3: LocalS3, identities: Any
) -> None:
    env = {
        **os.environ,
        "CUSTODIA_DB_NAME": big_database,
        "CUSTODIA_BACKUP_S3_BUCKET": s3_store.bucket,
        "CUSTODIA_BACKUP_RECIPIENTS": ",".join(settings.BACKUP_RECIPIENTS),
    }
    client = s3.client()

    def uploading() -> bool:
        return bool(client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads"))

    run = subprocess.Popen(  # noqa: S603  (fixed arguments)
        [str(Path(sys.executable).parent / "custodia"), "backup", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(uploading)  # the first part is up, the others not yet
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == -signal.SIGKILL
    assert s3_store.backups() == [], "nothing of the killed run is listed"
    assert keys_in(s3, s3_store.bucket) == [], "no object of it is visible"
    assert uploading(), "the killed run left an unfinished upload (so it was killed mid-way)"

    # The next writer aborts unfinished uploads older than a day (another host's may still be
    # running); moto dates every upload in 2010, so this one counts as old.
    backup = backups.run_backup(s3_store)
    assert s3_store.backups() == [backup]
    assert not uploading(), "the next run cleaned up"
    assert keys_in(s3, s3_store.bucket) == sorted(
        f"{s3_store.prefix}{name}" for name in (backup.payload_name, backup.manifest_name)
    )
    backups.verify_backup(backup, identities)


def test_a_dump_without_a_manifest_is_removed_once_it_cannot_be_an_upload_in_progress(
    s3_store: S3Store, s3: LocalS3
) -> None:
    """A killed run (or prune) can leave a dump whose manifest never came; on S3 another host's
    run may be between its dump and its manifest, so the dump goes only once a day old."""
    orphan = "20261204T031500Z-1a2b3c4d.dump.age"
    s3.client().put_object(Bucket=s3_store.bucket, Key=s3_store.prefix + orphan, Body=b"age")
    with s3_store.locked():
        pass
    assert orphan in s3_store.objects(), "a fresh one may be another host's: kept"
    assert s3_store.backups() == [], "and never listed"
    s3_store.leftover_age = dt.timedelta(0)
    with s3_store.locked():
        pass
    assert orphan not in s3_store.objects()
