"""Clients from a CSV file: read, and each row checked, before anything is written.

`parse_csv` turns the bytes of an upload into rows of client fields, or refuses the whole file
with one clear reason (`ImportFileError`: too large, not UTF-8, too many rows, an unknown or
missing column). Checking the rows against the client rules and the business's existing clients
is the action's (`clients/actions.py`: `check_client_rows`, `do_import_clients`), so the preview
and the write apply the same rules. docs/import.md describes the accepted files.

The columns are a table (`COLUMNS`) from a header to the record and field it fills, so that other
records (a client's pets) can be added as more columns without changing the reader.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from custodia.core.cells import FORMULA_STARTS

MAX_BYTES: Final = 2 * 1024 * 1024
MAX_ROWS: Final = 5_000
# The record each column fills, and its field there: headers are matched without regard to case
# or surrounding spaces.
COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "name": ("client", "name"),
    "email": ("client", "email"),
    "phone": ("client", "phone"),
    "address": ("client", "address"),
    "notes": ("client", "notes"),
    # One pet per row, of the row's new client (docs/profiles.md); a row without them has none.
    "pet_name": ("pet", "name"),
    "pet_species": ("pet", "species"),
    "pet_breed": ("pet", "breed"),
    "pet_birthday": ("pet", "birthday"),
    "pet_feeding": ("pet", "feeding"),
    "pet_medication": ("pet", "medication"),
    "pet_vet_name": ("pet", "vet_name"),
    "pet_vet_phone": ("pet", "vet_phone"),
    "pet_notes": ("pet", "notes"),
}
# The column of a pet's field (for a row's errors).
PET_COLUMN_OF: Final = {
    field: column for column, (record, field) in COLUMNS.items() if record == "pet"
}
REQUIRED_COLUMNS: Final = ("name",)
# Columns of the business export's clients.csv (lifecycle/export/entities.py) that an import
# leaves out: a record made by an import gets its own id and times.
IGNORED_COLUMNS: Final = frozenset({"id", "created_at", "updated_at"})


class ImportFileError(ValueError):
    """The whole file is refused; the message says why, quoting at most a header's name."""


@dataclass(frozen=True)
class ImportRow:
    """One row of the file: its number as a spreadsheet shows it (the header is row 1), the
    client's fields it gives, and its pet's (none filled: no pet)."""

    row: int
    client: dict[str, str] = field(default_factory=dict)
    pet: dict[str, str] = field(default_factory=dict)

    @property
    def has_pet(self) -> bool:
        return any(value.strip() for value in self.pet.values())

    def to_json(self) -> list[Any]:
        return [self.row, self.client, self.pet] if self.pet else [self.row, self.client]

    @classmethod
    def from_json(cls, value: Any) -> ImportRow:
        """A row back from `to_json`; ValueError for anything else."""
        if not (isinstance(value, list) and len(value) in (2, 3)):
            raise ValueError("not an import row")
        row, client, *rest = value
        pet = rest[0] if rest else {}
        if not (isinstance(row, int) and isinstance(client, dict) and isinstance(pet, dict)):
            raise ValueError("not an import row")
        for record, fields in (("client", client), ("pet", pet)):
            if not all(
                isinstance(key, str) and isinstance(text, str) and (record, key) in COLUMNS.values()
                for key, text in fields.items()
            ):
                raise ValueError("not an import row")
        return cls(row, dict(client), dict(pet))


@dataclass(frozen=True)
class RowError:
    """A problem with one cell (or, `column` empty, the row): row number, column, message."""

    row: int
    column: str
    message: str


def errors_by_row(errors: Iterable[RowError]) -> dict[int, list[RowError]]:
    """The errors grouped by row number, in row order (for a preview)."""
    grouped: dict[int, list[RowError]] = {}
    for error in sorted(errors, key=lambda error: error.row):
        grouped.setdefault(error.row, []).append(error)
    return grouped


def parse_csv(data: bytes) -> tuple[list[ImportRow], list[RowError]]:
    """The rows of a CSV file of clients and the rows too malformed to read (a row with more
    cells than the header); ImportFileError refuses the whole file."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(
            f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB: split it into smaller files."
        )
    try:
        # utf-8-sig drops the byte-order mark spreadsheets put at the start of "CSV UTF-8".
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(
            "The file is not UTF-8 text: save it as CSV with UTF-8 encoding."
        ) from None
    if "\x00" in text:
        raise ImportFileError("The file is not a CSV text file (it holds NUL characters).")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        return _read_rows(reader)
    except csv.Error as exc:
        raise ImportFileError(
            f"The file is not valid CSV near line {reader.line_num}: {exc}."
        ) from None


def _read_rows(reader: Any) -> tuple[list[ImportRow], list[RowError]]:
    header: list[str] | None = None
    rows: list[ImportRow] = []
    errors: list[RowError] = []
    # A row's number as a spreadsheet numbers rows: a cell with a line break stays one row.
    for number, cells in enumerate(reader, start=1):
        if header is None:
            header = _header(cells)
            continue
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(rows) + len(errors) >= MAX_ROWS:
            raise ImportFileError(
                f"The file has more than {MAX_ROWS:,} rows: split it into smaller files."
            )
        if len(cells) > len(header):
            message = f"The row has {len(cells)} cells; the header names {len(header)}."
            errors.append(RowError(number, "", message))
            continue
        records: dict[str, dict[str, str]] = {"client": {}, "pet": {}}
        for column, cell in zip(header, cells, strict=False):
            if column in COLUMNS:
                record, name = COLUMNS[column]
                records[record][name] = _from_text_cell(cell)
        rows.append(ImportRow(number, records["client"], records["pet"]))
    if header is None:
        raise ImportFileError("The file is empty: its first row must name the columns.")
    if not rows and not errors:
        raise ImportFileError("The file has a header but no rows.")
    return rows, errors


def _header(cells: list[str]) -> list[str]:
    header = [cell.strip().lower() for cell in cells]
    known = set(COLUMNS) | IGNORED_COLUMNS
    for position, name in enumerate(header, start=1):
        if name not in known:
            shown = name[:40] if name.isprintable() else "?"
            raise ImportFileError(
                f"Column {position} ({shown or 'blank'}) is not one this import knows: "
                f"the columns are {', '.join(COLUMNS)}."
            )
        if header.index(name) != position - 1:
            raise ImportFileError(f"The column {name} appears twice.")
    for name in REQUIRED_COLUMNS:
        if name not in header:
            raise ImportFileError(f"The file needs a {name} column.")
    return header


def _from_text_cell(cell: str) -> str:
    # The export (core/cells.py) puts an apostrophe before a cell a spreadsheet would run as a
    # formula; it is taken off again, so an export imports as it was. Formulas need no guard
    # here: every CSV the product writes guards its cells.
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell
