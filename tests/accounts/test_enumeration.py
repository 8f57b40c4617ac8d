"""No account enumeration: login, signup and password reset answer a known and an unknown email
with the same status, the same page and a similar time."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import TestCase
from django.urls import reverse

from tests.conftest import HttpsClient
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Any) -> None:
    """This process's own hashing slots: other test runs on the machine share var/run's."""
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


ROUNDS = 9
# Measurements a timing comparison may take before it fails (assert_similar_timing).
ATTEMPTS = 3


def normalised(response: Any, *emails: str) -> tuple[int, str, str]:
    """Status, redirect target and body with per-request noise (CSRF token, the email) removed."""
    body = response.content.decode()
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)
    for email in emails:
        body = body.replace(email, "EMAIL")
    return response.status_code, response.get("Location", ""), body


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def assert_similar_timing(measure: Callable[[], tuple[list[float], list[float]]]) -> None:
    """The fastest quarter of interleaved runs within 35 % (a password hash, ~20-40 ms, is what
    would show). A busy machine only ever adds time, to either side at random; the quickest runs
    are the ones it left alone, so they compare the work itself. A leak shows in every
    measurement, noise only now and then: `measure` runs again, up to ATTEMPTS times, and the
    test fails only when every one differs."""
    seen = []
    for _ in range(ATTEMPTS):
        known, unknown = measure()
        a, b = quickest_quarter(known), quickest_quarter(unknown)
        slower, faster = max(a, b), min(a, b)
        if slower - faster <= max(0.010, 0.35 * slower):
            return
        seen.append(f"known {a * 1000:.1f} ms vs unknown {b * 1000:.1f} ms")
    raise AssertionError("; ".join(seen))


def quickest_quarter(times: list[float]) -> float:
    """The mean of the fastest quarter of `times`."""
    quickest = sorted(times)[: max(1, len(times) // 4)]
    return statistics.fmean(quickest)


@pytest.fixture
def no_rate_limits(settings: Any) -> None:
    """Rate limits apply to both sides alike; here they would only cut the sample short."""
    settings.ACCOUNT_RATE_LIMITS = False


def login(email: str) -> Any:
    # Run what the request left for its commit (the lockout notice), as a real request does.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return HttpsClient().post(
            reverse("account_login"), {"login": email, "password": "wrong password, long enough"}
        )


def signup(email: str) -> Any:
    return HttpsClient().post(
        reverse("account_signup"),
        {
            "business_name": "Tails Ltd",
            "full_name": "Pat Doe",
            "email": email,
            "password1": "grey lantern orchard 8812",
            "password2": "grey lantern orchard 8812",
        },
    )


def reset(email: str) -> Any:
    return HttpsClient().post(reverse("account_reset_password"), {"email": email})


# --- Same answer ----------------------------------------------------------------------------


@pytest.mark.parametrize("flow", [login, signup, reset], ids=["login", "signup", "reset"])
def test_known_and_unknown_emails_get_the_same_answer(db, smtp_server, flow):
    known = UserFactory().email
    unknown = "nobody-here@example.test"
    first_known, first_unknown = flow(known), flow(unknown)
    assert normalised(first_known, known) == normalised(first_unknown, unknown)
    if first_known.status_code == 302:  # the page the redirect leads to is the same too
        page_known = HttpsClient().get(first_known["Location"])
        page_unknown = HttpsClient().get(first_unknown["Location"])
        assert normalised(page_known, known) == normalised(page_unknown, unknown)


def test_signup_with_a_taken_email_sends_a_mail_instead_of_saying_so(db, smtp_server):
    user = UserFactory()
    response = signup(user.email.upper())
    assert response.status_code == 302
    message = smtp_server.wait_for(1)[-1]
    assert message.recipients == [user.email]
    assert "already" in message.body.lower()


def test_reset_for_an_unknown_email_sends_a_mail_too(db, smtp_server):
    response = reset("nobody-here@example.test")
    assert response.status_code == 302
    message = smtp_server.wait_for(1)[-1]
    assert message.recipients == ["nobody-here@example.test"]
    assert "/password/reset/key/" not in message.body


# --- Similar time ---------------------------------------------------------------------------


def run_interleaved(
    flow: Callable[[str], Any], known: list[str], unknown: list[str]
) -> tuple[list[float], list[float]]:
    known_times, unknown_times = [], []
    flow(f"warm-up-{time.monotonic_ns()}@example.test")
    for k, u in zip(known, unknown, strict=True):
        elapsed, _ = timed(lambda k=k: flow(k))
        known_times.append(elapsed)
        elapsed, _ = timed(lambda u=u: flow(u))
        unknown_times.append(elapsed)
    return known_times, unknown_times


def fresh_addresses(tag: str) -> list[str]:
    return [f"{tag}-{n}-{time.monotonic_ns()}@example.test" for n in range(ROUNDS)]


def test_login_takes_as_long_for_an_unknown_email(db, no_rate_limits):
    # A fresh account each round, so no name reaches its lockout during the sample.
    known = [UserFactory().email for _ in range(ROUNDS)]
    assert_similar_timing(lambda: run_interleaved(login, known, fresh_addresses("nobody")))


def test_signup_takes_as_long_for_a_taken_email(db, smtp_server, no_rate_limits):
    taken = [UserFactory().email for _ in range(ROUNDS)]
    assert_similar_timing(lambda: run_interleaved(signup, taken, fresh_addresses("new")))


def test_reset_takes_as_long_for_an_unknown_email(db, smtp_server, no_rate_limits):
    known = [UserFactory().email for _ in range(ROUNDS)]
    assert_similar_timing(lambda: run_interleaved(reset, known, fresh_addresses("nobody")))


@pytest.mark.mail_after_commit  # the notice waits for the commit, beside the answer
def test_the_failure_that_starts_a_lockout_takes_as_long_for_an_unknown_email(
    db, smtp_server, no_rate_limits
):
    """Only a real account's owner gets the lockout notice; sending it must not slow the answer.

    The test server answers like a distant one (100 ms per message), as a real relay would.
    """
    handle = smtp_server.handler.handle_DATA

    async def slow_relay(server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.1)
        return await handle(server, session, envelope)

    smtp_server.handler.handle_DATA = slow_relay  # type: ignore[method-assign]
    measured = 0

    def measure() -> tuple[list[float], list[float]]:
        nonlocal measured
        measured += 1
        known = [UserFactory().email for _ in range(ROUNDS)]
        unknown = fresh_addresses("nobody")
        for email in known + unknown:
            for _ in range(4):
                login(email)
        # Only the fifth failure, the one that starts the pause, is timed.
        return run_interleaved(login, known, unknown)

    assert_similar_timing(measure)
    # The notices did go out (to the known names only).
    assert len(smtp_server.wait_for(ROUNDS * measured)) == ROUNDS * measured
