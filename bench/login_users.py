"""Users for the login benchmarks: `python -m bench.login_users COUNT` (Django settings from env).

Makes COUNT users with the bench owner's password (the same argon2id hash, so no hashing here)
and a verified address, and COUNT more with a TOTP authenticator as well. Prints JSON:
{"password": [email, ...], "totp": [[email, base32 secret], ...]}. Benchmark data only.
"""

from __future__ import annotations

import json
import sys

import django


def main(count: int) -> None:
    django.setup()
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import generate_totp_secret
    from allauth.mfa.utils import encrypt
    from django.db import transaction

    from bench.harness import OWNER_EMAIL
    from custodia.accounts.models import User

    with transaction.atomic():
        password = User.objects.get(email=OWNER_EMAIL).password
        users = User.objects.bulk_create(
            User(email=f"login-{kind}-{n}@bench.invalid", full_name=f"Login {n}", password=password)
            for kind in ("password", "totp")
            for n in range(count)
        )
        EmailAddress.objects.bulk_create(
            EmailAddress(user=user, email=user.email, verified=True, primary=True) for user in users
        )
        secrets = {user.email: generate_totp_secret() for user in users[count:]}
        Authenticator.objects.bulk_create(
            Authenticator(
                user=user,
                type=Authenticator.Type.TOTP,
                data={"secret": encrypt(secrets[user.email])},
            )
            for user in users[count:]
        )
    print(
        json.dumps(
            {
                "password": [user.email for user in users[:count]],
                "totp": [[email, secret] for email, secret in secrets.items()],
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
