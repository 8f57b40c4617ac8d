"""argon2id at OWASP's recommended parameters (19 MiB, t=2, p=1), with a bound on concurrency.

A hash takes about 20 ms of one core. Without a bound, a storm of login attempts keeps every core
hashing and starves every other request. Under `custodia serve` (PASSWORD_HASH_SOCKET set), every
hash runs in the server's hashing pool (accounts/hashpool.py): a few processes at a lower CPU
priority behind a bounded queue, and a login that finds the queue full is answered 503 at once.

Anywhere else (commands, tests, a WSGI server started by hand), the hash runs in the calling
process, holding one of `PASSWORD_HASH_CONCURRENCY` slots on this host (default: half the cores);
when none frees up within `PASSWORD_HASH_WAIT_MS`, the request is answered 503 with Retry-After
(HashingBusy). The slots are `flock`s on files under the var directory, so they bound all
processes together and are released if a process dies.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from custodia.accounts import hashpool
from custodia.accounts.hashpool import HashingBusy

__all__ = ["HashingBusy", "OwaspArgon2PasswordHasher", "hashing_slot"]


def _take_free_slot() -> int | None:
    directory = settings.PASSWORD_HASH_SLOT_DIR
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for slot in range(settings.PASSWORD_HASH_CONCURRENCY):
        # A fresh open file description per attempt, so threads of one process contend too.
        descriptor = os.open(directory / f"slot-{slot}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue
        return descriptor
    return None


@contextmanager
def hashing_slot() -> Iterator[None]:
    """Hold one hashing slot for the block, or raise HashingBusy after the configured wait."""
    deadline = time.monotonic() + settings.PASSWORD_HASH_WAIT_MS / 1000
    descriptor = _take_free_slot()
    while descriptor is None:
        if time.monotonic() >= deadline:
            raise HashingBusy
        time.sleep(0.005)
        descriptor = _take_free_slot()
    try:
        yield
    finally:
        os.close(descriptor)  # releases the lock


class OwaspArgon2PasswordHasher(hashpool.Argon2id):
    """Django's argon2id hasher with bounded memory and bounded concurrency."""

    def encode(self, password: str, salt: str) -> str:
        if settings.PASSWORD_HASH_SOCKET:
            return str(hashpool.ask(settings.PASSWORD_HASH_SOCKET, "encode", password, salt))
        with hashing_slot():
            return super().encode(password, salt)

    def verify(self, password: str, encoded: str) -> bool:
        if settings.PASSWORD_HASH_SOCKET:
            return bool(hashpool.ask(settings.PASSWORD_HASH_SOCKET, "verify", password, encoded))
        with hashing_slot():
            return super().verify(password, encoded)
