"""Spreadsheet cells that stay text (CSV exports: the audit trail's, the whole business's)."""

from __future__ import annotations

# What makes a spreadsheet read a cell as a formula (OWASP "CSV injection"): a leading
# apostrophe makes it text again, and is what spreadsheets themselves show for such cells.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text_cell(text: str) -> str:
    """`text` as a CSV cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
