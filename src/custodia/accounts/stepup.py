"""Step-up: sensitive actions ask for a fresh proof of identity, inside the action.

A proof is allauth's record of how this session authenticated (login or re-authentication):
- a passkey (WebAuthn) on its own, or
- the password, plus a TOTP or recovery code when the person has enrolled one.
It counts for allauth's ACCOUNT_REAUTHENTICATION_TIMEOUT (5 minutes). So a session
remembered for days must prove itself again, second factor included, before anything sensitive.

Card work has its own sliding window: a card action passes when the previous card action of the
session was at most `CARD_WINDOW_SECONDS` ago, or when the proof is fresh; each passing card action
restarts the window. An API token carries no session and can never step up.
"""

from __future__ import annotations

import time
from typing import Any

from allauth.account import app_settings as allauth_account_settings
from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from custodia.core.actor import Actor

CARD_WINDOW_SECONDS = 15 * 60
CARD_ACTIVITY_SESSION_KEY = "custodia.card_activity_at"
# allauth's authentication records, as (method, MFA type) pairs.
PASSWORD = ("password", None)
PASSKEY = ("mfa", Authenticator.Type.WEBAUTHN)
# What completes a password when the person has any factor enrolled: a code or a security key.
SECOND_FACTORS = tuple(
    ("mfa", kind)
    for kind in (
        Authenticator.Type.TOTP,
        Authenticator.Type.RECOVERY_CODES,
        Authenticator.Type.WEBAUTHN,
    )
)


def clock() -> float:
    """Now, as time.time(): the one seam tests move."""
    return time.time()


class StepUpRequired(PermissionDenied):
    """The action needs a fresh proof of identity; web pages send the person to /app/step-up/."""

    def __init__(self, *, cards: bool = False, session: bool = True) -> None:
        self.cards = cards
        if not session:
            message = (
                "This needs a browser session that confirmed the password recently; "
                "an API token cannot."
            )
        elif cards:
            message = "Card work needs your password again after 15 minutes without card activity."
        else:
            message = "Please confirm it's you (password, plus your authenticator code if set up)."
        super().__init__(message)


class SessionAuthentication:
    """The proof a logged-in browser session carries (allauth's authentication records)."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    def _records(self) -> list[dict[str, Any]]:
        return list(get_authentication_records(self.request, self.request.user))

    def latest(self, *kinds: tuple[str, str | None]) -> float | None:
        """When this session last authenticated by one of `kinds` ((method, mfa type) pairs)."""
        times = [
            float(record["at"])
            for record in get_authentication_records(self.request, self.request.user)
            if (record.get("method"), record.get("type")) in kinds
        ]
        return max(times, default=None)

    def needs_second_factor(self) -> bool:
        """Any factor enrolled (a security key only, too): then a password alone is not a proof."""
        return is_mfa_enabled(self.request.user)

    def stepped_up_at(self) -> float | None:
        proofs = []
        passkey = self.latest(PASSKEY)
        if passkey is not None:
            proofs.append(passkey)
        password = self.latest(PASSWORD)
        if password is not None:
            if self.needs_second_factor():
                second = self.latest(*SECOND_FACTORS)
                if second is not None:
                    proofs.append(min(password, second))
            else:
                proofs.append(password)
        return max(proofs, default=None)

    def card_activity_at(self) -> float | None:
        value = self.request.session.get(CARD_ACTIVITY_SESSION_KEY)
        return float(value) if isinstance(value, int | float) else None

    def note_card_activity(self, at: float) -> None:
        self.request.session[CARD_ACTIVITY_SESSION_KEY] = at


class ServerConsole:
    """An operator at the server's console (`custodia token create`): whoever can run commands
    there already holds the database and the keys, so there is nothing further to prove."""

    def stepped_up_at(self) -> float | None:
        return clock()

    def card_activity_at(self) -> float | None:
        return None

    def note_card_activity(self, at: float) -> None:
        return None


def step_up_seconds() -> int:
    """How long a proof counts: allauth's re-authentication timeout, one setting for both."""
    return int(allauth_account_settings.REAUTHENTICATION_TIMEOUT)


def is_fresh(at: float | None, seconds: float | None = None, now: float | None = None) -> bool:
    """Whether `at` lies within the last `seconds` (default: a step-up's), never in the future."""
    now = clock() if now is None else now
    seconds = step_up_seconds() if seconds is None else seconds
    return at is not None and 0 <= now - at <= seconds


def has_fresh_step_up(actor: Actor) -> bool:
    """Whether the actor's session proved itself in the last few minutes (see below)."""
    proof = actor.authentication
    return proof is not None and is_fresh(proof.stepped_up_at())


def require_step_up(actor: Actor) -> None:
    """Raise StepUpRequired unless the actor's session proved itself in the last few minutes."""
    proof = actor.authentication
    if proof is None:
        raise StepUpRequired(session=False)
    if not is_fresh(proof.stepped_up_at()):
        raise StepUpRequired()


def require_card_window(actor: Actor) -> None:
    """The guard every card action calls first: inside the card window, or a fresh step-up.

    Passing restarts the window, so steady card work is not interrupted and 15 idle minutes are.
    """
    proof = actor.authentication
    if proof is None:
        raise StepUpRequired(cards=True, session=False)
    # The proof is read before "now": a proof made this instant (the console's) is never later.
    stepped_up_at = proof.stepped_up_at()
    now = clock()
    in_window = is_fresh(proof.card_activity_at(), CARD_WINDOW_SECONDS, now)
    if not (in_window or is_fresh(stepped_up_at, now=now)):
        raise StepUpRequired(cards=True)
    proof.note_card_activity(now)
