"""bench/vault.py and bench/invoices.py: the generated cards are cards the vault accepts and the
sandbox approves, the load figures are wrk's, and scenario 19 fails on an N+1 or missing lines."""

from __future__ import annotations

import random

from bench.harness import QUICK, Bench

from bench import invoices, vault
from custodia.vault.cards import Brand, check_number

# The sandbox's test numbers that do not simply approve (docs/payments.md, "Test cards"; the
# sandbox's module loads the vault's models, which this process's settings do not install).
SPECIAL = {
    "4000000000000002",
    "4000000000009995",
    "4000000000000069",
    "4000000000000127",
    "4000000000000119",
    "4000000000000317",
}


def test_card_numbers_are_valid_visas_and_never_a_sandbox_test_number() -> None:
    rng = random.Random(7)
    numbers = [vault.card_number(rng) for _ in range(2000)]
    for number in numbers:
        assert check_number(number) == (number, Brand.VISA)
        assert number not in SPECIAL
    assert len(set(numbers)) == len(numbers)


def test_stats_are_wrks_figures() -> None:
    figures = vault.stats([i / 1000 for i in range(1, 101)], failed=5, elapsed=2.0)
    assert figures["requests"] == 100 and figures["unexpected"] == 5
    assert figures["ok_rps"] == 47.5 and figures["rps"] == 50.0
    assert round(figures["p50_ms"]) == 51 and round(figures["p99_ms"]) == 100


def measured(lines: int, statements: int, invoice: float = 7.0) -> dict[str, object]:
    return {
        "invoice_seconds": [invoice, invoice],
        "select_seconds": [1.0, 1.0],
        "lines": lines,
        "invoice_statements": statements,
    }


def test_invoice_figures() -> None:
    bench = Bench(QUICK, {})
    invoices.record_19(bench, measured(10_000, 30_006))
    assert [row.passed for row in bench.rows] == [True, True, True]
    bench = Bench(QUICK, {})
    # A query per visit, lines missing, too slow: each figure fails.
    invoices.record_19(bench, measured(9_999, 40_006, invoice=13.0))
    assert [row.passed for row in bench.rows] == [False, False, False]
