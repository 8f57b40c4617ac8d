"""Exports in tests: a signing key and an export directory of the test's own; reading archives."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def export_env(settings: Any, tmp_path: Path) -> Path:
    """The test's own audit signing key and export directory (returned)."""
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "secrets" / "signer.pem"
    settings.EXPORT_DIR = tmp_path / "exports"
    return Path(settings.EXPORT_DIR)


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def csv_rows(files: dict[str, bytes], entity: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(files[f"{entity}.csv"].decode())))


def json_rows(files: dict[str, bytes], entity: str) -> list[dict[str, Any]]:
    document = json.loads(files[f"{entity}.json"])
    assert document["entity"] == entity
    assert document["count"] == len(document["rows"])
    return list(document["rows"])


def rewrite_zip(source: Path, target: Path, changes: dict[str, bytes | None]) -> Path:
    """A copy of the archive with files replaced (bytes) or removed (None), or added."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            if name in changes:
                replacement = changes[name]
                if replacement is not None:
                    new.writestr(name, replacement)
            else:
                new.writestr(name, old.read(name))
        for name, data in changes.items():
            if name not in old.namelist() and data is not None:
                new.writestr(name, data)
    return target
