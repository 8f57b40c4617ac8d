"""argon2id at OWASP's recommended parameters (19 MiB, t=2, p=1): about 20 ms a hash here."""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class OwaspArgon2PasswordHasher(Argon2PasswordHasher):
    """Django's argon2id hasher with bounded memory, so logins cannot exhaust the server."""

    time_cost = 2
    memory_cost = 19456
    parallelism = 1
