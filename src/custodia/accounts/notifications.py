"""Security notifications: a SecurityEvent row for the person's security panel, and an email.

allauth already mails password, email-address and MFA changes (ACCOUNT_EMAIL_NOTIFICATIONS);
for those the receivers of its signals (accounts/receivers.py) only record the event. Sign-ins
from a new device, lockouts and unlocks are Custodia's own, so they are both recorded and mailed
here (templates/accounts/email/).

Lockout notices are bounded so that an attacker cannot flood a mailbox: one for the first pause
of a series, then at most one every `LOGIN_LOCKOUT_NOTICE_SECONDS` while the series goes on (each
with a fresh unlock link); pauses in between are neither mailed nor listed again. The mail goes
out only once the pause is committed.

"A new device" is kept simple: a browser family and operating system on a /24 (IPv6: /48)
network that none of the person's last `NEW_DEVICE_LOOKBACK` sign-ins came from. A person's very
first recorded sign-in is not news, so it is recorded without a mail.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from custodia.accounts.actions import do_record_security_event
from custodia.accounts.links import public_url
from custodia.accounts.models import SecurityEvent, SecurityEventKind, User
from custodia.accounts.throttle import Lockout, device_fingerprint

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


def record_sign_in(request: HttpRequest, user: AbstractBaseUser) -> None:
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
