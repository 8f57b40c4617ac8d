"""Operators for the platform tests: made by the real console action, signed in like a browser
that logged in with a password and a TOTP code (fresh, or long enough ago to be stale)."""

from __future__ import annotations

import json
import time
from typing import Any

from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.db import connection, transaction

from custodia.accounts.models import User
from custodia.core.dbcontext import set_db_context
from custodia.platform.actions import do_create_operator
from custodia.platform.models import VulnerabilityReport
from tests.conftest import HttpsClient

STALE = 10 * 60  # seconds: beyond the 5-minute step-up window


def make_operator(email: str = "olive@platform.example", *, factor: bool = True) -> User:
    """An operator made as `custodia operator create` makes one, with a TOTP factor if asked."""
    with transaction.atomic():
        operator = do_create_operator(email, "Olive Operator")
    user = operator.user
    if factor:
        TOTP.activate(user, generate_totp_secret())
    return user


def signed_in(user: User, *, proved_ago: float = 0) -> HttpsClient:
    """A browser session of `user` whose password and TOTP code were entered `proved_ago`
    seconds ago."""
    client = HttpsClient()
    client.force_login(user)
    at = time.time() - proved_ago
    session = client.session
    session["account_authentication_methods"] = [
        {"method": "password", "at": at},
        {"method": "mfa", "type": "totp", "at": at},
    ]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()
    return client


def prove_now(client: HttpsClient, user: User) -> None:
    """The session re-authenticates now (as /accounts/reauthenticate/ and the code would)."""
    session = client.session
    at = time.time()
    session["account_authentication_methods"] = [
        *session["account_authentication_methods"],
        {"method": "password", "at": at},
        {"method": "mfa", "type": "totp", "at": at},
    ]
    session.save()


def as_operator(user: User) -> None:
    """The operator's own database context (as their request has), for reading reports."""
    set_db_context(user_id=user.pk)


def all_reports(user: User) -> list[VulnerabilityReport]:
    as_operator(user)
    return list(VulnerabilityReport.objects.order_by("received_at"))


def platform_events(user: User, action: str) -> list[tuple[Any, ...]]:
    """The platform chain's events of `action` by `user` (read in their own context)."""
    set_db_context(user_id=user.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT target_type, target_id, detail FROM audit_auditevent"
            " WHERE tenant_id IS NULL AND actor_user_id = %s AND action = %s ORDER BY id",
            [user.pk, action],
        )
        return [(*row[:2], json.loads(row[2])) for row in cursor.fetchall()]
