"""Password hashing is bounded across all workers: a storm of logins cannot starve the server."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password

from custodia.accounts.hashers import HashingBusy, OwaspArgon2PasswordHasher, hashing_slot
from tests.factories import PASSWORD, UserFactory
from tests.web.support import anonymous

ANY_ARGON2_HASH = "argon2$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
HASHER = "custodia.accounts.hashers.OwaspArgon2PasswordHasher"


@pytest.fixture
def one_slot(settings: Any, tmp_path: Path) -> Path:
    settings.PASSWORD_HASHERS = [HASHER]
    settings.PASSWORD_HASH_CONCURRENCY = 1
    settings.PASSWORD_HASH_WAIT_MS = 50
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "slots"
    return tmp_path / "slots"


@pytest.fixture
def slot_taken_by_another_process(one_slot: Path) -> Iterator[None]:
    """A second process (as another worker would) holds the only slot."""
    holder = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "os.makedirs(sys.argv[1], exist_ok=True)\n"
            "fd = os.open(os.path.join(sys.argv[1], 'slot-0'), os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
            str(one_slot),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        yield
    finally:
        holder.kill()
        holder.wait()


def test_a_hash_waits_then_gives_up_when_every_slot_is_taken(
    slot_taken_by_another_process: None,
) -> None:
    started = time.monotonic()
    with pytest.raises(HashingBusy):
        OwaspArgon2PasswordHasher().verify(PASSWORD, ANY_ARGON2_HASH)
    waited = time.monotonic() - started
    assert 0.04 <= waited < 1.0


def test_threads_of_one_process_share_the_bound(one_slot: Path) -> None:
    with hashing_slot(), pytest.raises(HashingBusy), hashing_slot():
        pass
    # Released afterwards: the next hash runs.
    with hashing_slot():
        pass


def test_the_slot_is_released_when_the_holder_dies(one_slot: Path) -> None:
    holder = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            "os.makedirs(sys.argv[1], exist_ok=True)\n"
            "fd = os.open(os.path.join(sys.argv[1], 'slot-0'), os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os._exit(0)\n",
            str(one_slot),
        ]
    )
    holder.wait()
    encoded = OwaspArgon2PasswordHasher().encode(PASSWORD, "saltsaltsaltsalt")
    assert OwaspArgon2PasswordHasher().verify(PASSWORD, encoded)


@pytest.fixture
def argon2_user(db: None, one_slot: Path) -> Any:
    return UserFactory(password=make_password(PASSWORD, hasher="default"))


def test_a_login_during_a_storm_is_a_503_with_retry_after(
    argon2_user: Any, slot_taken_by_another_process: None
) -> None:
    user = argon2_user
    assert user.password.startswith("argon2$argon2id$")
    browser = anonymous()
    answer = browser.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert answer.status_code == 503
    assert answer["Retry-After"] == "2"
    assert "Too many sign-ins are being checked right now" in answer.content.decode()
    assert "_auth_user_id" not in browser.session
