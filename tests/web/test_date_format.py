"""Dates and times are shown one way everywhere (formats/en/formats.py): templates name a
format, never write one of their own."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path

from django.template import Context, Template
from django.utils import timezone

import custodia

TEMPLATES = Path(custodia.__file__).parent / "templates"
NAMED = {
    "DATE_FORMAT",
    "TIME_FORMAT",
    "DATETIME_FORMAT",
    "MONTH_DAY_FORMAT",
    "YEAR_MONTH_FORMAT",
    "SHORT_DATE_FORMAT",
    "SHORT_DATETIME_FORMAT",
}
# For machines, not readers: ISO 8601 in <time datetime>, a day in a link's query, a day compared
# with another; the zone's name beside a named format in an email.
MACHINE = {"c", "Y-m-d", "Ymd", "e"}
# `|date` alone is DATE_FORMAT.
DEFAULT = "(none)"
FORMAT = re.compile(r"""\|(?:date|time)(?::\s*(["'])(.*?)\1)?|\{%\s*now\s+(["'])(.*?)\3""")


def formats_in(text: str) -> list[str]:
    found = []
    for match in FORMAT.finditer(text):
        quoted = match.group(2) if match.group(2) is not None else match.group(4)
        found.append(quoted if quoted is not None else DEFAULT)
    return found


def test_no_template_writes_a_date_format_of_its_own():
    ad_hoc = {
        f"{path.relative_to(TEMPLATES)}: {fmt}"
        for path in TEMPLATES.rglob("*")
        if path.is_file()
        for fmt in formats_in(path.read_text())
        if fmt not in NAMED | MACHINE | {DEFAULT}
    }
    assert not ad_hoc, sorted(ad_hoc)


def test_the_scan_finds_what_it_looks_for():
    assert formats_in('{{ a|date:"j M Y" }} {{ b|date }} {% now "Y" %}') == ["j M Y", "(none)", "Y"]


def test_a_moment_is_shown_the_one_way_in_the_current_zone():
    moment = dt.datetime(2026, 12, 8, 20, 30, tzinfo=dt.UTC)
    template = Template(
        '{{ at|date:"DATE_FORMAT" }} | {{ at|date:"TIME_FORMAT" }}'
        ' | {{ at|date:"DATETIME_FORMAT" }} | {{ at|date:"MONTH_DAY_FORMAT" }} | {{ at }}'
    )
    with timezone.override(zoneinfo.ZoneInfo("America/Los_Angeles")):
        assert template.render(Context({"at": moment})) == (
            "Tue 8 Dec 2026 | 12:30 | Tue 8 Dec 2026, 12:30 | Tue 8 Dec | Tue 8 Dec 2026, 12:30"
        )
    with timezone.override(zoneinfo.ZoneInfo("Pacific/Auckland")):
        assert template.render(Context({"at": moment})).startswith("Wed 9 Dec 2026 | 09:30")
