"""Security notifications: a SecurityEvent row for the person's security panel, and an email.

allauth already mails password, email-address and MFA changes (ACCOUNT_EMAIL_NOTIFICATIONS);
for those the receivers here only record the event. Sign-ins from a new device, lockouts and
unlocks are Custodia's own, so they are both recorded and mailed here (templates/accounts/email/).

Lockout notices are bounded so that an attacker cannot flood a mailbox: one for the first pause
of a series, then at most one every `LOGIN_LOCKOUT_NOTICE_SECONDS` while the series goes on (each
with a fresh unlock link); pauses in between are neither mailed nor listed again. The mail goes
out only once the pause is committed.

Adding a factor also adds recovery codes, and removing the last one removes them: allauth signals
each, but the person did one thing, so recovery-code additions and removals are not recorded on
their own; a deliberate regeneration (allauth's `authenticator_reset`) is.

"A new device" is kept simple: a browser family and operating system on a /24 (IPv6: /48)
network that none of the person's last `NEW_DEVICE_LOOKBACK` sign-ins came from. A person's very
first recorded sign-in is not news, so it is recorded without a mail.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from allauth.account import signals as account_signals
from allauth.account.adapter import get_adapter
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.auth import signals as auth_signals
from django.contrib.auth.base_user import AbstractBaseUser
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from custodia.accounts.actions import do_record_security_event
from custodia.accounts.links import public_url
from custodia.accounts.models import SecurityEvent, SecurityEventKind, User
from custodia.accounts.ratelimit import Lockout, device_fingerprint, forget_failures
from custodia.accounts.sessions import record_session_end

logger = logging.getLogger(__name__)

SIGN_IN_KINDS = (SecurityEventKind.LOGIN, SecurityEventKind.NEW_DEVICE_LOGIN)
# The detail of a pause on second-factor codes (a password pause has none).
CODE_LOCKOUT_DETAIL = "wrong two-factor codes"


def _mail(template: str, user: AbstractBaseUser, context: dict[str, Any]) -> None:
    """One security notice to the person's address (allauth renders subject and body)."""
    email = getattr(user, "email", "")
    if email:
        get_adapter().send_mail(f"accounts/email/{template}", email, context)


def _event_context(event: SecurityEvent) -> dict[str, Any]:
    return {
        "event": event,
        "security_url": public_url(reverse("security_panel")),
        "reset_url": public_url(reverse("account_reset_password")),
    }


@receiver(account_signals.user_logged_in)
def on_login(sender: Any, request: HttpRequest, user: AbstractBaseUser, **kwargs: Any) -> None:
    """Record the sign-in; mail the person when it came from a device not seen lately."""
    device = device_fingerprint(request)
    recent = list(
        SecurityEvent.objects.filter(user_id=user.pk, kind__in=SIGN_IN_KINDS)
        .order_by("-at")
        .values_list("device", flat=True)[: settings.NEW_DEVICE_LOOKBACK]
    )
    is_new = bool(recent) and device not in recent
    kind = SecurityEventKind.NEW_DEVICE_LOGIN if is_new else SecurityEventKind.LOGIN
    event = do_record_security_event(user, kind, request=request, device=device)
    if is_new:
        _mail("new_device_login", user, _event_context(event))


def notify_lockout(request: HttpRequest, login: str, lockout: Lockout) -> None:
    """A pause has begun on this name: if an account has it, record it and mail the unlock link.

    Nothing tells the person at the keyboard whether a mail went out.
    """
    user = User.objects.filter(email__iexact=login.strip()).first()
    if user is not None:
        _notify_pause(request, user, lockout, detail="")


def notify_code_lockout(request: HttpRequest, user: User, lockout: Lockout) -> None:
    """A pause on the user's second-factor codes has begun: whoever tried them had the password."""
    _notify_pause(request, user, lockout, detail=CODE_LOCKOUT_DETAIL)


def _notify_pause(request: HttpRequest, user: User, lockout: Lockout, *, detail: str) -> None:
    if not user.is_active:
        return
    since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_LOCKOUT_NOTICE_SECONDS)
    noticed_lately = SecurityEvent.objects.filter(
        user_id=user.pk, kind=SecurityEventKind.LOCKOUT, detail=detail, at__gt=since
    ).exists()
    if lockout.pauses > 1 and noticed_lately:
        return
    event = do_record_security_event(
        user, SecurityEventKind.LOCKOUT, request=request, detail=detail
    )
    token = lockout.unlock_token(user.pk)
    context = {
        **_event_context(event),
        "request": request,
        "email": user.email,
        "until": lockout.until,
        "second_factor": bool(detail),
        "unlock_url": public_url(reverse("account_unlock", args=[token])),
        "unlock_hours": settings.LOGIN_UNLOCK_TOKEN_SECONDS // 3600,
    }
    # The adapter sends it once the pause is committed (a rolled-back one sends nothing), and
    # beside the response, not before it: an SMTP round trip only for names that have an account
    # would let the timing of a fifth failure tell which names do.
    get_adapter().send_mail("accounts/email/lockout", user.email, context)


def notify_unlocked(request: HttpRequest, user: User) -> None:
    """An unlock link was spent: record it and tell the person, in case it was not them."""
    event = do_record_security_event(user, SecurityEventKind.UNLOCKED, request=request)
    _mail("unlocked", user, _event_context(event))


@receiver(auth_signals.user_logged_out)
def on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Every logout is a session ending; the lifetime middleware and the panel say why."""
    if user is not None:
        record_session_end(user, getattr(request, "session_end_reason", "logout"))


@receiver(account_signals.password_changed)
def on_password_changed(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """allauth mails the notice; the panel records it."""
    do_record_security_event(user, SecurityEventKind.PASSWORD_CHANGED, request=request)


@receiver(account_signals.password_set)
def on_password_set(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """A first password for a login that had none counts as a change."""
    do_record_security_event(user, SecurityEventKind.PASSWORD_CHANGED, request=request)


@receiver(account_signals.password_reset)
def on_password_reset(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """Record it, and end any sign-in pause on the person's addresses (the reset proved them)."""
    forget_failures(user.email)  # and the code series of this account
    do_record_security_event(user, SecurityEventKind.PASSWORD_RESET, request=request)


@receiver(account_signals.email_changed)
def on_email_changed(
    sender: Any, request: HttpRequest, user: Any, from_email_address: Any, **kwargs: Any
) -> None:
    """allauth mails the old address; the panel records the change (without the addresses)."""
    if from_email_address is not None:
        do_record_security_event(user, SecurityEventKind.EMAIL_CHANGED, request=request)


def _is_companion(authenticator: Any) -> bool:
    """Recovery codes added or removed together with a factor: part of that factor's event."""
    return bool(authenticator.type == Authenticator.Type.RECOVERY_CODES)


@receiver(mfa_signals.authenticator_added)
def on_mfa_added(
    sender: Any, request: HttpRequest, user: Any, authenticator: Any, **kw: Any
) -> None:
    """allauth mails the notice; the panel records which kind of factor."""
    if _is_companion(authenticator):
        return
    do_record_security_event(
        user, SecurityEventKind.MFA_ADDED, request=request, detail=str(authenticator.type)
    )


@receiver(mfa_signals.authenticator_reset)
def on_mfa_reset(
    sender: Any, request: HttpRequest, user: Any, authenticator: Any, **kw: Any
) -> None:
    """New recovery codes on request: allauth mails the notice; the panel records it."""
    do_record_security_event(
        user, SecurityEventKind.MFA_ADDED, request=request, detail="new recovery codes"
    )


@receiver(mfa_signals.authenticator_removed)
def on_mfa_removed(
    sender: Any, request: HttpRequest, user: Any, authenticator: Any, **kw: Any
) -> None:
    """allauth mails the notice; the panel records which kind of factor."""
    if _is_companion(authenticator):
        return
    do_record_security_event(
        user, SecurityEventKind.MFA_REMOVED, request=request, detail=str(authenticator.type)
    )
