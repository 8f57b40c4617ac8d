"""The export archive: build it from rows, and check one (docs/export.md).

A zip holding, for each entity (entities.py), `<name>.csv` and `<name>.json`; the files an
entity's rows name (visit photos: `photos/<visit_id>/<photo_id>.jpg`, stored as they are served);
`README.md`
describing every file and column; `signing-key.pem`, the public half of the key that signed it;
and `MANIFEST.json`, the sha256 and size of every other file, signed with Ed25519 by the audit
signing key by the same code as a backup's manifest (lifecycle/backups/manifest.py): it covers
the manifest's canonical JSON (sorted keys, no spaces, ASCII), so `jq -cjS .manifest` and
`openssl pkeyutl -verify` check it without Custodia.

CSV cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return) get a leading apostrophe; the JSON files hold every value exactly.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custodia.audit.chain import ChainBroken, signing_key
from custodia.core.cells import as_text_cell
from custodia.lifecycle.backups import sign_manifest, verify_manifest
from custodia.lifecycle.backups.logical import Digesting
from custodia.lifecycle.export.entities import Entity

FORMAT = "custodia-export/1"
MANIFEST = "MANIFEST.json"
README = "README.md"
PUBLIC_KEY = "signing-key.pem"
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection).
COMPRESS_LEVEL = 1  # deflate's fastest: the archive is mostly text, and time is the budget
SPOOL_BYTES = 16 << 20

Progress = Callable[[int, int, str], None]
Row = tuple[Any, ...]


class ExportError(Exception):
    """An archive could not be built or does not verify; the message says what and where."""


@dataclass(frozen=True)
class Source:
    """One entity's rows: `count` expected (for progress), `batches()` yields lists of tuples
    in the order of the entity's columns. Or, for a large table with nothing to decrypt,
    `written()` yields batches of rows the database wrote itself: (CSV line, already safe and
    quoted; JSON object), see access.py. With `files`, each batch's rows name files (a visit's
    photos): `files(batch)` yields `(name in the archive, bytes)`, a few at a time, and each is
    written beside the rows as soon as it comes, so memory holds one batch's files at most."""

    entity: Entity
    count: int
    batches: Callable[[], Iterator[list[Row]]] = lambda: iter(())
    written: Callable[[], Iterator[list[tuple[str, str]]]] | None = None
    files: Callable[[list[Row]], Iterator[tuple[str, bytes]]] | None = None
    files_note: str = ""


@dataclass
class Built:
    """What was written: rows per file, and the manifest."""

    rows: dict[str, int] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


# --- Values -------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A value as JSON holds it: times in ISO 8601, ids as text, bytes as hex."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None or kind is float:
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview | bytearray):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return str(value)


def _cell(value: Any) -> str:
    """The CSV cell of a value already made plain (see safe_cell)."""
    if type(value) is str:
        text = value
    elif value is None:
        text = ""
    elif value is True or value is False:
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = " ".join(str(item) for item in value)
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    return as_text_cell(text)


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: formula-like text gets a leading apostrophe."""
    return _cell(plain(value))


# --- Writing ------------------------------------------------------------------------------------


def _add_bytes(
    archive: zipfile.ZipFile, name: str, data: bytes, files: dict[str, Any], *, stored: bool = False
) -> None:
    """One file, listed in the manifest; `stored`: kept as is (a JPEG does not compress)."""
    if name in files or name == MANIFEST:
        raise ExportError(f"{name} would be written twice.")
    if stored:
        archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)
    else:
        archive.writestr(
            name, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
        )
    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _write_entity(
    archive: zipfile.ZipFile,
    source: Source,
    files: dict[str, Any],
    advance: Callable[[int, str], None],
) -> int:
    """`<name>.csv` straight into the archive and `<name>.json` beside it (spooled, then
    copied in): one read of the rows for both. An entity whose rows name files spools its CSV
    too: the files go into the archive between batches, while no entry is open."""
    entity = source.entity
    if source.files is not None:
        return _write_entity_with_files(archive, source, files, advance)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spooled:
        with archive.open(f"{entity.name}.csv", "w", force_zip64=True) as csv_entry:
            count = _write_rows(source, csv_entry, spooled, files, advance)
        spooled.seek(0)
        with archive.open(f"{entity.name}.json", "w", force_zip64=True) as json_entry:
            shutil.copyfileobj(spooled, json_entry, 1 << 20)
    return count


def _write_entity_with_files(
    archive: zipfile.ZipFile,
    source: Source,
    files: dict[str, Any],
    advance: Callable[[int, str], None],
) -> int:
    entity = source.entity
    take_files = source.files
    assert take_files is not None

    def after(batch: list[Row]) -> None:
        for name, data in take_files(batch):
            _add_bytes(archive, name, data, files, stored=True)

    with (
        tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as csv_spooled,
        tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as json_spooled,
    ):
        count = _write_rows(source, csv_spooled, json_spooled, files, advance, after=after)
        for spooled, suffix in ((csv_spooled, "csv"), (json_spooled, "json")):
            spooled.seek(0)
            with archive.open(f"{entity.name}.{suffix}", "w", force_zip64=True) as entry:
                shutil.copyfileobj(spooled, entry, 1 << 20)
    return count


def _write_rows(
    source: Source,
    csv_entry: IO[bytes],
    spooled: IO[bytes],
    files: dict[str, Any],
    advance: Callable[[int, str], None],
    *,
    after: Callable[[list[Row]], None] | None = None,
) -> int:
    """The rows as CSV into `csv_entry` and as JSON into `spooled`, both hashed."""
    entity = source.entity
    names = entity.column_names
    count = 0
    csv_hashing = Digesting(csv_entry)
    json_hashing = Digesting(spooled)
    # Each batch is written as one piece: per-row writes would compress and hash row by row.
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(names)
    json_hashing.write(f'{{"entity": "{entity.name}", "rows": [\n'.encode())
    separator = b""
    encode = json.JSONEncoder(ensure_ascii=True).encode
    if source.written is not None:
        for lines in source.written():
            csv_hashing.write(text.getvalue().encode())  # the header, then nothing
            text.seek(0)
            text.truncate()
            if lines:
                csv_hashing.write("".join(line + "\r\n" for line, _ in lines).encode())
                json_hashing.write(separator + ",\n".join(obj for _, obj in lines).encode())
                separator = b",\n"
            count += len(lines)
            advance(len(lines), entity.name)
    for batch in source.batches():
        rows = [[plain(value) for value in row] for row in batch]
        writer.writerows([_cell(value) for value in row] for row in rows)
        csv_hashing.write(text.getvalue().encode())
        text.seek(0)
        text.truncate()
        chunk = ",\n".join(encode(dict(zip(names, row, strict=True))) for row in rows)
        if chunk:
            json_hashing.write(separator + chunk.encode())
            separator = b",\n"
        if after is not None:
            after(batch)
        count += len(batch)
        advance(len(batch), entity.name)
    csv_hashing.write(text.getvalue().encode())  # the header of an entity without rows
    json_hashing.write(f'\n], "count": {count}}}\n'.encode())
    files[f"{entity.name}.csv"] = {**csv_hashing.digest(), "rows": count}
    files[f"{entity.name}.json"] = {**json_hashing.digest(), "rows": count}
    return count


def readme(title: str, sources: Iterable[Source], rows: dict[str, int]) -> str:
    """The archive's README: what each file is and what each column means."""
    lines = [
        f"# {title}",
        "",
        "Every kind of record is here twice: as CSV (for a spreadsheet) and as JSON (exact",
        "values, for programs). Times are ISO 8601 in UTC; ids are UUIDs and link the files.",
        "In the CSV files, a cell that a spreadsheet would run as a formula (one starting with",
        "= + - @, a tab or a carriage return) starts with an apostrophe ('); the JSON files hold",
        "the values exactly as stored.",
        "",
        f"{MANIFEST} lists the sha256 sum and size of every other file and is signed with",
        f"Ed25519; {PUBLIC_KEY} is the public key it was signed with. Check it with",
        "`custodia export verify FILE`, or without Custodia as docs/export.md shows.",
        "",
        "## Files",
        "",
    ]
    for source in sources:
        entity = source.entity
        count = rows.get(entity.name, 0)
        lines += [
            f"### {entity.name}.csv, {entity.name}.json",
            "",
            f"{entity.description} {count} row{'s' if count != 1 else ''}.",
            "",
            "| column | meaning |",
            "| --- | --- |",
            *(f"| {column.name} | {column.description} |" for column in entity.columns),
            "",
        ]
        if source.files_note:
            lines += [source.files_note, ""]
    lines += [
        f"### {README}",
        "",
        "This file.",
        "",
        f"### {PUBLIC_KEY}",
        "",
        "The Ed25519 public key (PEM) that signed the manifest. Compare its key id with the one",
        "your Custodia install states (`custodia export public-key`) before trusting it.",
        "",
        f"### {MANIFEST}",
        "",
        "`manifest`: the archive's format, what it holds (`kind`: business or client, the ids),",
        "when it was made, `files` (per file, photos included: sha256, size in bytes, rows) and",
        "the signing key's id; `signature`: the Ed25519 signature of the manifest's canonical",
        "JSON, in base64.",
        "",
    ]
    return "\n".join(lines)


def public_key_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_archive(
    out: IO[bytes],
    *,
    title: str,
    about: dict[str, Any],
    sources: list[Source],
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> Built:
    """Write the archive of `sources` into `out`; `about` (ASCII ids and names) goes into the
    manifest. `progress(done, total, stage)` is called after each batch of rows."""
    total = sum(source.count for source in sources)
    done = 0

    def advance(rows: int, stage: str) -> None:
        nonlocal done
        done += rows
        if progress is not None:
            progress(min(done, max(total, done)), max(total, done), stage)

    files: dict[str, Any] = {}
    built = Built()
    with zipfile.ZipFile(
        out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
    ) as archive:
        for source in sources:
            built.rows[source.entity.name] = _write_entity(archive, source, files, advance)
        _add_bytes(archive, README, readme(title, sources, built.rows).encode(), files)
        key = signing_key()
        _add_bytes(archive, PUBLIC_KEY, public_key_pem(key.public_key()), files)
        manifest = {
            "format": FORMAT,
            **about,
            "created_at": (now or dt.datetime.now(dt.UTC)).isoformat(),
            "files": files,
        }
        document = sign_manifest(manifest)
        archive.writestr(MANIFEST, document)
        built.manifest = json.loads(document)["manifest"]
    if progress is not None:
        progress(done, max(total, done), "signed")
    return built


# --- Checking -----------------------------------------------------------------------------------


def install_public_key() -> Ed25519PublicKey:
    """The public half of this install's audit signing key (never made here if missing)."""
    try:
        return signing_key(create=False).public_key()
    except ChainBroken as exc:
        raise ExportError(str(exc)) from None


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        loaded = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError):
        raise ExportError(f"{path} is not a readable PEM public key.") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise ExportError(f"{path} is not an Ed25519 public key.")
    return loaded


def verify_archive(path: Path, public: Ed25519PublicKey | None = None) -> dict[str, Any]:
    """The archive's manifest once its signature and every file's sum check out; ExportError
    naming the first problem otherwise (altered, missing or added files, another key)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _verify_open(archive, public or install_public_key())
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ExportError(f"{path} is not a readable export archive ({exc}).") from None


def _verify_open(archive: zipfile.ZipFile, public: Ed25519PublicKey) -> dict[str, Any]:
    names = archive.namelist()
    if len(names) != len(set(names)):
        raise ExportError("The archive holds two files of the same name: it was altered.")
    if MANIFEST not in names:
        raise ExportError(f"The archive has no {MANIFEST}.")
    # The signature as every signed manifest is checked (backups' manifest module).
    manifest, problem = verify_manifest(archive.read(MANIFEST), public=public)
    if problem is not None:
        raise ExportError(f"{MANIFEST}: {problem}.")
    if manifest.get("format") != FORMAT:
        raise ExportError(f"Unknown export format {manifest.get('format')!r}.")
    if not isinstance(manifest.get("files"), dict):
        raise ExportError(f"{MANIFEST} lists no files.")
    listed: dict[str, Any] = manifest["files"]
    for name, expected in sorted(listed.items()):
        if name not in names:
            raise ExportError(f"{name} is listed in the manifest but missing from the archive.")
        digest, size = hashlib.sha256(), 0
        with archive.open(name) as member:
            while chunk := member.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        if digest.hexdigest() != expected.get("sha256") or size != expected.get("size"):
            raise ExportError(f"{name} does not match its sha256 in the manifest: it was altered.")
    extra = sorted(set(names) - set(listed) - {MANIFEST})
    if extra:
        raise ExportError(f"{extra[0]} is in the archive but not in the manifest: it was added.")
    return manifest
