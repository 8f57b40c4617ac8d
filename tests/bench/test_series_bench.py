"""bench/series.py: scenario 21 expands every rule in full and holds the expansion to 30 times
the list of as many single visits."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bench.harness import QUICK, Bench
from django.utils import timezone

from bench import series


def measured(expand: float, listed: float, starts: int = 78_000) -> dict[str, object]:
    return {
        "expand_seconds": [expand, expand],
        "list_seconds": [listed, listed],
        "starts": starts,
        "listed": series.VISITS,
    }


def test_every_rule_is_expanded_in_full_on_the_local_wall_clock() -> None:
    zone = ZoneInfo("Europe/Berlin")
    first = dt.datetime(2031, 3, 3, 10, 0, tzinfo=zone)
    with timezone.override(zone):
        assert series.expand(first) == series.SERIES * series.WEEKS * len(series.WEEKDAYS)


def test_the_target_is_thirty_times_the_list() -> None:
    bench = Bench(QUICK, {})
    series.record_21(bench, measured(2.0, 0.1))
    series.record_21(bench, measured(4.0, 0.1, starts=77_999))
    ratio, starts, listed, *failed = bench.rows
    assert ratio.passed and ratio.target == "<= 30.0" and round(ratio.ratio) == 20
    assert starts.passed and listed.passed
    assert [row.passed for row in failed] == [False, False, True]
