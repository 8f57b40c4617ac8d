"""bench/export.py: scenario 15 holds the export to 30 s per 200,000 clients, scaled to the
profile's business, and passes only under it."""

from __future__ import annotations

from bench.harness import FULL, QUICK, Bench

from bench import export


def measured(clients: int, seconds: float) -> dict[str, object]:
    return {"clients": clients, "seconds": seconds, "rows": {}, "stage_seconds": {}}


def test_full_profile_budget_is_thirty_seconds_for_200k() -> None:
    bench = Bench(FULL, {})
    export.record_15(bench, measured(200_000, 29.0))
    export.record_15(bench, measured(200_000, 31.0))
    passed, failed = bench.rows
    assert passed.baseline == 30.0 and passed.passed and passed.target == "<= 1.0"
    assert not failed.passed
    assert bench.results["15-export"]["clients"] == 200_000


def test_smaller_profiles_scale_the_budget() -> None:
    bench = Bench(QUICK, {})
    export.record_15(bench, measured(50_000, 7.0))
    export.record_15(bench, measured(50_000, 8.0))
    assert [row.baseline for row in bench.rows] == [7.5, 7.5]
    assert [row.passed for row in bench.rows] == [True, False]
