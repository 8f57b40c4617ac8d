"""How often a sign-in may fail: per-account lockouts (the client address is core/requestctx.py's).

Per account (per login name, whether or not an account has it, so the answer never tells which),
`LOGIN_LOCKOUT_THRESHOLD` consecutive failures pause sign-in for a back-off that doubles with each
pause of a series, capped at `LOGIN_LOCKOUT_MAX_SECONDS`, and forgotten after a day without
failures. A pause is never permanent, and the account's owner can lift it at once for their own
browser with the single-use link emailed to them, so an attacker cannot keep them out.

Wrong second-factor codes (TOTP or recovery code, at sign-in and at re-authentication) count in a
series of their own per user, with the same back-off and unlock link: only someone who has the
password, or the person's session, can add to it, so strangers cannot use it to lock anyone out,
while someone with the password cannot try codes from many addresses without end. The sign-in
forms that apply these pauses are in accounts/forms.py.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.utils import timezone
from user_agents import parse as parse_user_agent

from custodia.accounts.digests import digest_secret
from custodia.accounts.models import LoginThrottle, User, normalize_email
from custodia.cache.backend import outside_the_request
from custodia.core.requestctx import client_ip

LOCKOUT_KEY_PURPOSE = "login-throttle"
CODE_LOCKOUT_PREFIX = "second-factor:"  # the code series' key: an HMAC of this and the user id
UNLOCK_SALT = "custodia.web.accounts.unlock"
UNLOCKED_SESSION_KEY = "custodia.unlocked"


def network_prefix(ip: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address: a device moves within it."""
    if not ip:
        return ""
    address = ipaddress.ip_address(ip)
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def user_agent_summary(request: HttpRequest | None) -> str:
    """A summary such as "Firefox 120 on Linux": the browser and system, not the raw header."""
    header = str(request.META.get("HTTP_USER_AGENT", ""))[:512] if request is not None else ""
    if not header:
        return "Unknown browser"
    agent = parse_user_agent(header)
    version = agent.browser.version_string.split(".")[0]
    browser = f"{agent.browser.family} {version}".strip()
    return f"{browser} on {agent.os.family}"[:120]


def device_fingerprint(request: HttpRequest | None) -> str:
    """Browser family, operating system and network: what counts as "the same device"."""
    if request is None:
        return ""
    header = str(request.META.get("HTTP_USER_AGENT", ""))[:512]
    agent = parse_user_agent(header)
    return f"{agent.browser.family}|{agent.os.family}|{network_prefix(client_ip(request))}"[:160]


# --- Per-account lockout -------------------------------------------------------------------

# The throttle's writes, on a connection apart from the request's (`outside_the_request`).
TABLE = LoginThrottle._meta.db_table
INSERT_ROW_SQL = (
    f"INSERT INTO {TABLE} (key, failures, lockouts, generation)"  # noqa: S608 (a model's table)
    " VALUES (%(key)s, 0, 0, 0) ON CONFLICT (key) DO NOTHING"
)
LOCK_ROW_SQL = (
    "SELECT failures, lockouts, last_failure_at, generation, locked_until"  # noqa: S608
    f" FROM {TABLE} WHERE key = %(key)s FOR UPDATE"
)
UPDATE_ROW_SQL = (
    f"UPDATE {TABLE} SET failures = %(failures)s, lockouts = %(lockouts)s,"  # noqa: S608
    " last_failure_at = %(last_failure_at)s, locked_until = %(locked_until)s"
    " WHERE key = %(key)s"
)
# Only a row with a series to end is written: no write per sign-in.
SUCCESS_SQL = (
    f"UPDATE {TABLE} SET failures = 0, lockouts = 0, locked_until = NULL,"  # noqa: S608
    " generation = generation + 1"
    " WHERE key = %(key)s AND (failures <> 0 OR lockouts <> 0 OR locked_until IS NOT NULL)"
)
# Once: the link's generation is the next one, and redeeming makes it the current one.
UNLOCK_SQL = (
    f"UPDATE {TABLE} SET generation = %(generation)s, failures = 0,"  # noqa: S608
    " locked_until = NULL WHERE key = %(key)s AND generation + 1 = %(generation)s RETURNING true"
)


def throttle_key(login: str) -> str:
    """The throttle row's key for a login name: an HMAC, so the table holds no address."""
    return digest_secret(LOCKOUT_KEY_PURPOSE, normalize_email(login))


def code_throttle_key(user: Any) -> str:
    """The throttle row's key for a user's second-factor codes (apart from the name's)."""
    return digest_secret(LOCKOUT_KEY_PURPOSE, f"{CODE_LOCKOUT_PREFIX}{user.pk}")


def _backoff(lockouts: int) -> dt.timedelta:
    seconds = settings.LOGIN_LOCKOUT_BASE_SECONDS * 2 ** max(0, lockouts - 1)
    return dt.timedelta(seconds=min(seconds, settings.LOGIN_LOCKOUT_MAX_SECONDS))


def _is_unlocked_here(request: HttpRequest, key: str) -> bool:
    session = getattr(request, "session", None)
    if session is None:
        return False
    until = session.get(UNLOCKED_SESSION_KEY, {}).get(key)
    return until is not None and until > timezone.now().timestamp()


def _locked_until(request: HttpRequest, key: str) -> dt.datetime | None:
    row = LoginThrottle.objects.filter(key=key).first()
    if row is None or row.locked_until is None or row.locked_until <= timezone.now():
        return None
    if _is_unlocked_here(request, key):
        return None
    return row.locked_until


def locked_until(request: HttpRequest, login: str) -> dt.datetime | None:
    """When a pause on this login name ends, or None when it may try now (from this browser)."""
    return _locked_until(request, throttle_key(login))


def code_locked_until(request: HttpRequest, user: Any) -> dt.datetime | None:
    """When a pause on this user's second-factor codes ends, or None when they may try now."""
    return _locked_until(request, code_throttle_key(user))


@dataclass(frozen=True)
class Lockout:
    """A pause that has just begun: for the notice and the unlock link."""

    key: str
    generation: int
    until: dt.datetime
    # 1 for the first pause of a series (a success, an unlock's sign-in or a quiet day ends one).
    pauses: int = 1

    def unlock_token(self, user_id: object) -> str:
        """A signed link token for the account's owner, valid once (voided by any unlock)."""
        payload = {"k": self.key, "g": self.generation + 1, "u": str(user_id)}
        return signing.dumps(payload, salt=UNLOCK_SALT)


def _record_failure(key: str) -> Lockout | None:
    # On a connection of its own, committed at once: a request answered with an error after a
    # wrong password rolls its own transaction back, and must not take the count with it.
    now = timezone.now()
    with outside_the_request() as connection, connection.transaction():
        connection.execute(INSERT_ROW_SQL, {"key": key})
        row = connection.execute(LOCK_ROW_SQL, {"key": key}).fetchone()
        assert row is not None  # inserted above, and rows are only deleted when long quiet
        failures, lockouts, last_failure_at, generation, locked_until = row
        forget = dt.timedelta(seconds=settings.LOGIN_LOCKOUT_FORGET_SECONDS)
        if last_failure_at is not None and now - last_failure_at > forget:
            failures = lockouts = 0
        failures += 1
        lockout = None
        if failures >= settings.LOGIN_LOCKOUT_THRESHOLD:
            failures = 0
            lockouts += 1
            locked_until = now + _backoff(lockouts)
            lockout = Lockout(key, generation, locked_until, lockouts)
        connection.execute(
            UPDATE_ROW_SQL,
            {
                "key": key,
                "failures": failures,
                "lockouts": lockouts,
                "last_failure_at": now,
                "locked_until": locked_until,
            },
        )
    return lockout


def record_failure(login: str) -> Lockout | None:
    """Count a failed sign-in; returns the new pause when this failure starts one."""
    return _record_failure(throttle_key(login))


def record_code_failure(user: Any) -> Lockout | None:
    """Count a wrong second-factor code; returns the new pause when this one starts one."""
    return _record_failure(code_throttle_key(user))


def _record_success(key: str) -> None:
    # Outside the request too: a success in the request's transaction would hold the row's lock
    # until the request ends, and a failure counted outside it would wait for that.
    with outside_the_request() as connection:
        connection.execute(SUCCESS_SQL, {"key": key})


def record_success(login: str) -> None:
    """A correct password ends the series (only if there was one: no write per sign-in)."""
    _record_success(throttle_key(login))


def record_code_success(user: Any) -> None:
    """A correct second-factor code ends the user's code series (if there was one)."""
    _record_success(code_throttle_key(user))


def forget_failures(login: str) -> None:
    """A password reset ends any pause and series (the reset itself proved the mailbox).

    That includes the code series of the account with this address: whoever guessed codes had
    the old password.
    """
    record_success(login)
    user = User.objects.filter(email__iexact=login.strip()).first()
    if user is not None:
        record_code_success(user)


def redeem_unlock_token(request: HttpRequest, token: str) -> str | None:
    """Lift the pause the token was issued for, once, within its lifetime.

    Returns the id of the user it was issued to, or None when the token is forged, expired,
    used, or voided by a later unlock or success. The browser that redeems it may then sign in
    (or enter codes) despite new pauses on that name (or those codes) for the next hour.
    """
    if len(token) > 500:
        return None
    try:
        payload = signing.loads(
            token, salt=UNLOCK_SALT, max_age=settings.LOGIN_UNLOCK_TOKEN_SECONDS
        )
        key, generation, user_id = str(payload["k"]), int(payload["g"]), str(payload["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    with outside_the_request() as connection:
        redeemed = connection.execute(UNLOCK_SQL, {"key": key, "generation": generation})
        if redeemed.fetchone() is None:
            return None
    unlocked = dict(request.session.get(UNLOCKED_SESSION_KEY, {}))
    unlocked[key] = timezone.now().timestamp() + settings.LOGIN_UNLOCK_TOKEN_SECONDS
    request.session[UNLOCKED_SESSION_KEY] = unlocked
    return user_id


# --- Second-factor codes ------------------------------------------------------------------------
