"""The sign-in door (accounts/hashpool.py: SignInGate, web.middleware.HashingDoorMiddleware).

A worker works on a bounded number of sign-ins at once; a few more wait for a turn, asleep; the
rest are refused at once with the same 503 for every name, before any account is looked up.
Attacked with real threads, a real pool and the real middleware; `custodia serve`'s limits
never let sign-ins take the threads that pages need.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.urls import reverse

from custodia.accounts import hashpool
from custodia.accounts.hashpool import SignInGate
from custodia.ops.management.commands.serve import PAGE_THREADS, sign_in_limits
from tests.accounts.test_hashpool import (  # noqa: F401 - fixtures
    assert_refused_alike_at_the_door,
    pool,
    through_pool,
)
from tests.factories import PASSWORD, UserFactory
from tests.web.support import anonymous


def hold(gate: SignInGate, release: threading.Event) -> tuple[threading.Thread, list[bool]]:
    """A sign-in in another thread that keeps its turn until `release` is set."""
    admitted: list[bool] = []
    entered = threading.Event()

    def run() -> None:
        with gate.entry() as ok:
            admitted.append(ok)
            entered.set()
            release.wait(timeout=30)

    thread = threading.Thread(target=run)
    thread.start()
    assert entered.wait(timeout=10)
    return thread, admitted


def test_the_gate_lets_its_slots_through_and_refuses_the_next_at_once() -> None:
    gate = SignInGate(slots=2, waiting=0, wait_seconds=5)
    release = threading.Event()
    holders = [hold(gate, release) for _ in range(2)]
    started = time.monotonic()
    with gate.entry() as admitted:
        assert not admitted
    assert time.monotonic() - started < 0.5  # no waiting room: refused without a wait
    release.set()
    for thread, admitted_list in holders:
        thread.join(timeout=10)
        assert admitted_list == [True]
    with gate.entry() as admitted:  # the turns were given back
        assert admitted


def test_a_waiting_sign_in_gets_the_next_turn() -> None:
    gate = SignInGate(slots=1, waiting=1, wait_seconds=10)
    release = threading.Event()
    holder, _ = hold(gate, release)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with gate.entry() as admitted:
        assert admitted
        waited = time.monotonic() - started
    assert 0.2 < waited < 5
    holder.join(timeout=10)


def test_beyond_the_waiting_room_and_after_the_wait_a_sign_in_is_refused() -> None:
    gate = SignInGate(slots=1, waiting=1, wait_seconds=0.3)
    release = threading.Event()
    holder, _ = hold(gate, release)
    waiter_outcome: list[bool] = []
    waiting = threading.Thread(target=lambda: waiter_outcome.append(gate_try(gate)))
    waiting.start()
    time.sleep(0.1)  # the waiter has taken the one waiting place
    assert gate_try(gate) is False  # no place to wait: at once
    waiting.join(timeout=10)
    assert waiter_outcome == [False]  # waited 0.3 s, no turn came
    release.set()
    holder.join(timeout=10)
    assert gate_try(gate) is True


def gate_try(gate: SignInGate) -> bool:
    with gate.entry() as admitted:
        return admitted


def test_a_sign_in_that_fails_gives_its_turn_back() -> None:
    gate = SignInGate(slots=1, waiting=0, wait_seconds=1)
    with pytest.raises(RuntimeError), gate.entry() as admitted:
        assert admitted
        raise RuntimeError("the view failed")
    assert gate_try(gate) is True


@pytest.mark.parametrize("threads", [1, 2, 3, 4, 8, 16, 64])
@pytest.mark.parametrize("slots", [1, 2, 4])
def test_serve_never_lets_sign_ins_take_the_threads_pages_need(threads: int, slots: int) -> None:
    working, waiting = sign_in_limits(threads, slots)
    assert working >= 1  # a sign-in is always possible
    assert working <= slots
    if threads > PAGE_THREADS:
        assert working + waiting == threads - PAGE_THREADS
    else:
        assert (working, waiting) == (1, 0)


@pytest.fixture
def full_gate(settings: Any) -> Iterator[None]:
    """This process's door with its one turn taken and no waiting room."""
    settings.SIGN_IN_SLOTS, settings.SIGN_IN_WAITING, settings.SIGN_IN_WAIT_SECONDS = 1, 0, 0.1
    gate = hashpool.sign_in_gate(1, 0, 0.1)
    release = threading.Event()
    holder, _ = hold(gate, release)
    yield
    release.set()
    holder.join(timeout=10)


@pytest.mark.usefixtures("through_pool", "full_gate")
def test_a_full_door_answers_every_name_alike_before_looking_any_up(db: None) -> None:
    known = UserFactory(password=make_password(PASSWORD))
    assert_refused_alike_at_the_door(known.email)
    # Signing up meets the same door; other pages do not.
    signup = anonymous().post(reverse("account_signup"), {"email": "new@example.test"})
    assert signup.status_code == 503
    assert anonymous().get(reverse("account_login")).status_code == 200


@pytest.mark.usefixtures("through_pool")
def test_a_sign_in_waits_at_the_door_for_its_turn_and_then_signs_in(
    db: None, settings: Any
) -> None:
    settings.SIGN_IN_SLOTS, settings.SIGN_IN_WAITING, settings.SIGN_IN_WAIT_SECONDS = 1, 1, 10.0
    gate = hashpool.sign_in_gate(1, 1, 10.0)
    user = UserFactory(password=make_password(PASSWORD))
    release = threading.Event()
    holder, _ = hold(gate, release)
    threading.Timer(0.3, release.set).start()
    browser = anonymous()
    started = time.monotonic()
    answer = browser.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert answer.status_code == 302
    assert browser.session["_auth_user_id"] == str(user.pk)
    assert time.monotonic() - started >= 0.2
    holder.join(timeout=10)
