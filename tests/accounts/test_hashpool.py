"""The hashing pool (accounts/hashpool.py): real processes behind a real socket, attacked.

It hashes exactly what Django would, refuses at once beyond its queue, fails closed when a
process dies mid-hash and then recovers, shrugs off garbage on its socket, and keeps the socket
to its owner. Through Django, a login, a known and an unknown name all go through it, and a full
pool answers both with the same 503 and no oracle.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection
from django.test.client import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from custodia.accounts import hashpool
from custodia.accounts.hashpool import Argon2id, HashingBusy, HashingUnavailable, start_pool
from tests.accounts.test_enumeration import normalised
from tests.factories import PASSWORD, UserFactory
from tests.web.support import anonymous

HASHER = "custodia.accounts.hashers.OwaspArgon2PasswordHasher"
# A well-formed argon2id hash whose verification costs 50 logins' passes (about a second on an
# idle core, several on a loaded one; at 10 passes a quiet machine finished it before the tests
# that need it running could fill the pool or kill its process): long enough to fill the pool,
# or to kill the process hashing it, while it runs.
SLOW_HASH = "argon2$argon2id$v=19$m=19456,t=100,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43


@pytest.fixture
def pool() -> Iterator[tuple[Any, str]]:
    """A pool of one process and a queue of one, in a private directory short enough for a
    Unix socket's path."""
    run_dir = Path(tempfile.mkdtemp(prefix="hp-"))
    process, path = start_pool(run_dir, 1, 1, dict(os.environ))
    try:
        yield process, str(path)
    finally:
        process.terminate()
        process.wait(timeout=30)
        assert not path.exists()  # a stopped pool takes its socket with it
        path.parent.rmdir()
        run_dir.rmdir()


def hashing_processes(pool_pid: int) -> list[int]:
    """The pool's argon2id processes (its other child is multiprocessing's resource tracker)."""
    pids = []
    for task in Path(f"/proc/{pool_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                pids.append(int(child))
    return pids


def in_thread(call: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    """Run `call(*args)` in a thread; its result or exception lands in the list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call(*args))
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def fill(path: str) -> list[tuple[threading.Thread, list[Any]]]:
    """One slow hash running and one waiting: the pool of `pool` is full."""
    slow = [in_thread(hashpool.ask, path, "verify", PASSWORD, SLOW_HASH) for _ in range(2)]
    time.sleep(0.2)  # both reach the pool (a few milliseconds) while the first one runs
    return slow


def test_the_pool_hashes_exactly_what_django_would(pool: tuple[Any, str]) -> None:
    _, path = pool
    encoded = hashpool.ask(path, "encode", "grey lantern orchard 8812", "c2FsdHNhbHQxMjM0")
    assert encoded == Argon2id().encode("grey lantern orchard 8812", "c2FsdHNhbHQxMjM0")
    assert str(encoded).startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert hashpool.ask(path, "verify", "grey lantern orchard 8812", str(encoded)) is True
    assert hashpool.ask(path, "verify", "grey lantern orchard 8813", str(encoded)) is False
    # A stored hash argon2 cannot read gets the answer it gets in the request's process.
    for odd in ("argon2$argon2id$not-a-hash", "argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdA$AAAA"):
        assert hashpool.ask(path, "verify", PASSWORD, odd) is Argon2id().verify(PASSWORD, odd)


def test_a_full_pool_refuses_at_once_and_then_sheds_at_the_door(pool: tuple[Any, str]) -> None:
    _, path = pool
    slow = fill(path)
    # Full but not refusing yet: logins on their way to a hash are let through the door.
    assert hashpool.has_room(path)
    with pytest.raises(HashingBusy):
        hashpool.ask(path, "verify", PASSWORD, SLOW_HASH)
    # Refused while the slow ones still run: the answer did not wait for them.
    assert all(thread.is_alive() for thread, _ in slow)
    assert not hashpool.has_room(path)
    for thread, outcome in slow:
        thread.join(timeout=120)
        assert outcome == [False]  # the wrong password stays wrong however long it took
    assert hashpool.has_room(path)


def test_a_hashing_process_killed_mid_hash_fails_closed_and_the_pool_recovers(
    pool: tuple[Any, str],
) -> None:
    process, path = pool
    encoded = str(hashpool.ask(path, "encode", PASSWORD, "c2FsdHNhbHQxMjM0"))
    (victim,) = hashing_processes(process.pid)
    thread, outcome = in_thread(hashpool.ask, path, "verify", PASSWORD, SLOW_HASH)
    time.sleep(0.2)
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], HashingUnavailable)
    # The next hash runs on a new process and gives the right answers.
    assert hashpool.ask(path, "verify", PASSWORD, encoded) is True
    assert hashpool.ask(path, "verify", "not the password", encoded) is False
    assert hashing_processes(process.pid) not in ([], [victim])
    assert process.poll() is None


def raw_exchange(path: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(10)
        connection.connect(path)
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00\x00",
        struct.pack("!I", 2**32 - 1),  # a length past the limit
        struct.pack("!I", 100) + b"short",  # a frame cut off
        struct.pack("!I", 8) + b"not json",
        struct.pack("!I", 2) + b"[]",
        struct.pack("!I", 4) + b"\xff\xfe\xfd\xfc",  # not UTF-8
    ],
)
def test_garbage_on_the_socket_gets_no_hash_and_the_pool_carries_on(
    pool: tuple[Any, str], garbage: bytes
) -> None:
    _, path = pool
    answer = raw_exchange(path, garbage)
    assert b"result" not in answer
    assert (
        hashpool.ask(path, "verify", "x", str(hashpool.ask(path, "encode", "x", "saltsalt")))
        is True
    )


@pytest.mark.parametrize(
    "request_body",
    [
        {"op": "verify", "password": 1, "argument": SLOW_HASH},
        {"op": "verify", "password": PASSWORD, "argument": None},
        {"op": "exec", "password": PASSWORD, "argument": "print(1)"},
    ],
)
def test_a_malformed_request_is_refused(pool: tuple[Any, str], request_body: Any) -> None:
    _, path = pool
    answer = raw_exchange(path, hashpool._frame(request_body))
    assert hashpool._unframe(answer[4:]) == {"refused": True}


def test_the_socket_is_its_owners_alone(pool: tuple[Any, str]) -> None:
    _, path = pool
    assert stat.S_IMODE(Path(path).parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(path).stat().st_mode) & 0o077 == 0


def test_a_socket_left_by_a_killed_server_is_removed(tmp_path: Path) -> None:
    directory = tmp_path / "hashpool"
    directory.mkdir()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    (directory / f"pool-{dead}.sock").touch()
    (directory / f"pool-{os.getpid()}.sock").touch()
    hashpool.remove_stale_sockets(directory)
    assert [p.name for p in directory.iterdir()] == [f"pool-{os.getpid()}.sock"]


# --- Through Django ---------------------------------------------------------------------------


@pytest.fixture
def through_pool(settings: Any, pool: tuple[Any, str]) -> str:
    settings.PASSWORD_HASHERS = [HASHER]
    settings.PASSWORD_HASH_SOCKET = pool[1]
    return pool[1]


def test_passwords_are_made_and_checked_in_the_pool(db: None, through_pool: str) -> None:
    encoded = make_password(PASSWORD)
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert check_password(PASSWORD, encoded)
    assert not check_password(PASSWORD + "x", encoded)
    user = UserFactory(password=encoded)
    browser = anonymous()
    answer = browser.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert answer.status_code == 302
    assert browser.session["_auth_user_id"] == str(user.pk)


def test_an_unknown_name_costs_a_hash_in_the_pool_too(db: None, through_pool: str) -> None:
    """allauth hashes the password once for a name nobody has (no timing oracle): that hash
    goes to the pool as well, so a full pool refuses a known and an unknown name alike."""
    known = UserFactory(password=make_password(PASSWORD))
    slow = fill(through_pool)
    request = RequestFactory().post("/accounts/login/")
    for email in (known.email, "nobody-here@example.test"):
        with pytest.raises(HashingBusy):
            authenticate(request, email=email, password=PASSWORD)
    for thread, _ in slow:
        thread.join(timeout=120)


def assert_refused_alike_at_the_door(known_email: str) -> None:
    """A login as `known_email` and as a name nobody has: the same 503, no account looked up."""
    answers = []
    for email in (known_email, "nobody-here@example.test"):
        browser = anonymous()
        with CaptureQueriesContext(connection) as queries:
            answer = browser.post(reverse("account_login"), {"login": email, "password": PASSWORD})
        assert answer.status_code == 503
        assert answer["Retry-After"] == "2"
        assert "Too many sign-ins are being checked right now" in answer.content.decode()
        assert "_auth_user_id" not in browser.session
        # Refused at the door: no account was looked up, nothing counted as a failure.
        assert not [q for q in queries.captured_queries if "accounts_" in q["sql"]]
        answers.append(normalised(answer, email))
    assert answers[0] == answers[1]


def test_a_full_pool_answers_a_known_and_an_unknown_name_with_the_same_503(
    db: None, through_pool: str
) -> None:
    known = UserFactory(password=make_password(PASSWORD))
    slow = fill(through_pool)
    with pytest.raises(HashingBusy):  # one refusal: the pool now sheds at the door
        hashpool.ask(through_pool, "verify", PASSWORD, SLOW_HASH)
    assert_refused_alike_at_the_door(known.email)
    for thread, _ in slow:
        thread.join(timeout=120)


def test_an_unreachable_pool_is_a_503_never_a_pass(db: None, settings: Any, tmp_path: Path) -> None:
    settings.PASSWORD_HASHERS = [HASHER]
    user = UserFactory(password=make_password(PASSWORD, hasher="default"))
    settings.PASSWORD_HASH_SOCKET = str(tmp_path / "no-pool-here.sock")
    with pytest.raises(HashingUnavailable):
        check_password(PASSWORD, user.password)
    browser = anonymous()
    answer = browser.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert answer.status_code == 503
    assert answer["Retry-After"] == "2"
    assert "_auth_user_id" not in browser.session
