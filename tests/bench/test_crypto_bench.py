"""bench/crypto.py: scenario 12's sanity check passes only a server that reads its side's format,
so a baseline that secretly decrypts, or an encrypted side that serves stored bytes, fails."""

from __future__ import annotations

from bench import crypto

EMAIL = "Ada.Lee.42@Example.com"
SEALED = {"format": 1, "stored_is_plaintext": False, "index_matches": True}
PLAIN = {"format": 0, "stored_is_plaintext": True, "index_matches": True}


def test_each_side_passes_only_with_its_own_stored_format() -> None:
    api = {"email": EMAIL}
    assert crypto.read_right("on", api, SEALED)
    assert crypto.read_right("off", api, PLAIN)
    # The encrypted server reading plaintext rows, or the baseline reading sealed ones.
    assert not crypto.read_right("on", api, PLAIN)
    assert not crypto.read_right("off", api, SEALED)
    # A row the check did not find.
    assert not crypto.read_right("on", api, None)


def test_an_email_that_is_not_the_stored_ones_fails() -> None:
    # The blind index made at generation does not match what the API gave (wrong decryption).
    assert not crypto.read_right("on", {"email": EMAIL}, {**SEALED, "index_matches": False})
    # Bytes that are not an email of the generator's shape (a sealed value passed through).
    assert not crypto.read_right("on", {"email": "\x01\x00\x00\x00\x01garbage"}, SEALED)
    assert not crypto.read_right("off", {"email": ""}, PLAIN)


def test_merged_averages_latency_and_adds_failures() -> None:
    runs = [
        {
            "ok_rps": 10.0,
            "p50_ms": 100.0,
            "p90_ms": 200.0,
            "p99_ms": 300.0,
            "requests": 20,
            "unexpected": 0,
            "errors": 0,
        },
        {
            "ok_rps": 30.0,
            "p50_ms": 300.0,
            "p90_ms": 400.0,
            "p99_ms": 500.0,
            "requests": 60,
            "unexpected": 2,
            "errors": 1,
        },
    ]
    assert crypto.merged(runs) == {
        "ok_rps": 20.0,
        "p50_ms": 200.0,
        "p90_ms": 300.0,
        "p99_ms": 400.0,
        "requests": 80,
        "unexpected": 2,
        "errors": 1,
    }
