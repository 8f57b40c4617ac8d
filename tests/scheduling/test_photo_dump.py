"""A visit photo in a superuser's database dump, or in the database's files on disk, is
ciphertext: neither the JPEG's bytes nor any run of them appears (the photo is sealed with the
business's key before it reaches the database). Committed data in a scratch database, as
tests/crypto/test_dump.py does."""

from __future__ import annotations

import re
from pathlib import Path

from django.db import transaction

from custodia.lifecycle.backups.logical import connect
from custodia.scheduling.images import prepare_photo
from custodia.scheduling.reporting import do_add_visit_photo
from tests.acting import act
from tests.crypto import test_dump
from tests.crypto.test_dump import copy_blocks, pg_dump
from tests.factories import build_business
from tests.scheduling.photos_support import photo_bytes

# tests/crypto's fixture: a freshly migrated database of this test only.
scratch_database = test_dump.scratch_database


def samples(data: bytes, *, length: int = 24, count: int = 8) -> list[bytes]:
    """Runs of `data` from across it (past the JPEG header, which all JPEGs share)."""
    step = max(1, (len(data) - 200) // count)
    return [data[start : start + length] for start in range(200, len(data) - length, step)]


def populate() -> tuple[bytes, bytes]:
    """A business whose visit has a photo, committed; the stored plaintexts (image, thumb)."""
    source = photo_bytes((900, 700))
    prepared = prepare_photo(source)
    with transaction.atomic():
        business = build_business("Photoco")
        act(business.staff)
        do_add_visit_photo(business.visit, source, actor=business.staff)
    return prepared.image, prepared.thumbnail


def test_a_dump_and_the_data_files_hold_no_photo_plaintext(scratch_database: str) -> None:
    image, thumbnail = populate()
    # Re-encoding is deterministic: what the database was given to seal is these bytes.
    runs = samples(image) + samples(thumbnail)
    dump = pg_dump(scratch_database)
    blocks = copy_blocks(dump)
    assert "scheduling_visitphoto" in blocks
    rows = [line for line in blocks["scheduling_visitphoto"].splitlines() if line]
    assert len(rows) == 1
    # bytea is written as \\x followed by hex: each sealed value starts with format byte 01.
    values = re.findall(r"\\\\x([0-9a-f]+)", rows[0])
    assert len(values) == 2 and all(value.startswith("01") for value in values)
    folded = dump.lower()
    assert "\\\\xffd8ff" not in folded
    for run in runs:
        assert run.hex() not in folded

    # The files of the database on disk, after a checkpoint wrote every page out.
    with connect(scratch_database) as admin:
        admin.execute("CHECKPOINT")
        data_directory = Path(admin.execute("SHOW data_directory").fetchone()[0])
        oid = admin.execute(
            "SELECT oid FROM pg_database WHERE datname = %s", [scratch_database]
        ).fetchone()[0]
    files = [
        path
        for folder in (data_directory / "base" / str(oid), data_directory / "pg_wal")
        for path in folder.rglob("*")
        if path.is_file()
    ]
    assert files
    found_sealed = False
    for path in files:
        content = path.read_bytes()
        for run in runs:
            assert run not in content, path
        found_sealed = found_sealed or b"scheduling_visitphoto" in content
    assert found_sealed  # the table's catalog rows are there: the right files were read
