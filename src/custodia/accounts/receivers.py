"""What logins, logouts and credential changes set off: the receivers of Django's, allauth's and
allauth.mfa's signals, connected once by `connect_receivers()` (AccountsConfig.ready).

Sessions: a login starts a session's lifetime and lists it (in place of allauth.usersessions' own
receiver); a new password or second factor ends the person's other sessions; re-authentication
gives the session a new id. The security panel: each sign-in, logout, password, email and factor
change is recorded (accounts/notifications.py mails what allauth does not).

Adding a factor also adds recovery codes, and removing the last one removes them: allauth signals
each, but the person did one thing, so recovery-code additions and removals are neither recorded
on their own nor end sessions; a deliberate regeneration (allauth's `authenticator_reset`) is
recorded.
"""

from __future__ import annotations

from typing import Any

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from allauth.usersessions import signals as usersessions_signals
from django.contrib.auth import signals as auth_signals
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from custodia.accounts.actions import do_record_security_event
from custodia.accounts.models import SecurityEventKind
from custodia.accounts.notifications import record_sign_in
from custodia.accounts.sessionlist import track_login
from custodia.accounts.sessions import (
    current_session_key,
    end_sessions,
    record_session_end,
    rotate_session,
    start_session,
)
from custodia.accounts.throttle import forget_failures


def _is_companion(authenticator: Any) -> bool:
    """Recovery codes added or removed together with a factor: part of that factor's event."""
    return bool(getattr(authenticator, "type", None) == Authenticator.Type.RECOVERY_CODES)


# --- Sessions -----------------------------------------------------------------------------------


def on_logged_in(sender: object, request: HttpRequest, user: AbstractBaseUser, **_: object) -> None:
    """Login made a new session id (Django's login cycles it); its lifetime starts now."""
    if request is not None and hasattr(request, "session"):
        start_session(request)


def on_allauth_logged_in(
    sender: object, request: HttpRequest, user: AbstractBaseUser, **_: object
) -> None:
    """A login through allauth joins the session list (in place of allauth.usersessions' own
    receiver on the same signal)."""
    track_login(request, user)


def on_password_changed(
    sender: object, request: HttpRequest, user: AbstractBaseUser, **_: object
) -> None:
    """A new or reset password ends every other session (this one only if allauth kept it)."""
    end_sessions(user, keep=current_session_key(user))


def on_mfa_changed(
    sender: object, request: HttpRequest, user: AbstractBaseUser, **kwargs: object
) -> None:
    """A second factor added, removed or reset: other sessions end, this one gets a new id."""
    if _is_companion(kwargs.get("authenticator")):
        return
    keep = current_session_key(user)
    end_sessions(user, keep=keep)
    if keep is not None:
        rotate_session(request)


def on_reauthenticated(
    sender: object, request: HttpRequest, user: AbstractBaseUser, **kwargs: object
) -> None:
    """allauth records re-authentication in the session without a new id: give it one."""
    if kwargs.get("reauthenticated") and request.user.is_authenticated:
        rotate_session(request)


# --- The security panel ---------------------------------------------------------------------------


def on_sign_in(sender: Any, request: HttpRequest, user: AbstractBaseUser, **kwargs: Any) -> None:
    """Record the sign-in; mail the person when it came from a device not seen lately."""
    record_sign_in(request, user)


def on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Every logout is a session ending; the lifetime middleware and the panel say why."""
    if user is not None:
        record_session_end(user, getattr(request, "session_end_reason", "logout"))


def on_password_recorded(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """A changed password, or a first one for a login that had none: allauth mails the notice;
    the panel records it."""
    do_record_security_event(user, SecurityEventKind.PASSWORD_CHANGED, request=request)


def on_password_reset(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """Record it, and end any sign-in pause on the person's addresses (the reset proved them)."""
    forget_failures(user.email)  # and the code series of this account
    do_record_security_event(user, SecurityEventKind.PASSWORD_RESET, request=request)


def on_email_changed(
    sender: Any, request: HttpRequest, user: Any, from_email_address: Any, **kwargs: Any
) -> None:
    """allauth mails the old address; the panel records the change (without the addresses)."""
    if from_email_address is not None:
        do_record_security_event(user, SecurityEventKind.EMAIL_CHANGED, request=request)


def on_mfa_added(
    sender: Any, request: HttpRequest, user: Any, authenticator: Any, **kw: Any
) -> None:
    """allauth mails the notice; the panel records which kind of factor."""
    if _is_companion(authenticator):
        return
    do_record_security_event(
        user, SecurityEventKind.MFA_ADDED, request=request, detail=str(authenticator.type)
    )


def on_mfa_reset(
    sender: Any, request: HttpRequest, user: Any, authenticator: Any, **kw: Any
) -> None:
    """New recovery codes on request: allauth mails the notice; the panel records it."""
    do_record_security_event(
        user, SecurityEventKind.MFA_ADDED, request=request, detail="new recovery codes"
    )


def on_mfa_removed(
    sender: Any, request: HttpRequest, user: Any, authenticator: Any, **kw: Any
) -> None:
    """allauth mails the notice; the panel records which kind of factor."""
    if _is_companion(authenticator):
        return
    do_record_security_event(
        user, SecurityEventKind.MFA_REMOVED, request=request, detail=str(authenticator.type)
    )


def connect_receivers() -> None:
    """Connect every receiver above, sessions first (called once from ready())."""
    auth_signals.user_logged_in.connect(on_logged_in, dispatch_uid="custodia.sessions.logged_in")
    account_signals.user_logged_in.disconnect(receiver=usersessions_signals.on_user_logged_in)
    account_signals.user_logged_in.connect(
        on_allauth_logged_in, dispatch_uid="custodia.sessions.allauth_logged_in"
    )
    account_signals.authentication_step_completed.connect(
        on_reauthenticated, dispatch_uid="custodia.sessions.reauthenticated"
    )
    for number, signal in enumerate(
        (
            account_signals.password_changed,
            account_signals.password_set,
            account_signals.password_reset,
        )
    ):
        signal.connect(on_password_changed, dispatch_uid=f"custodia.sessions.password.{number}")
    for number, signal in enumerate(
        (
            mfa_signals.authenticator_added,
            mfa_signals.authenticator_removed,
            mfa_signals.authenticator_reset,
        )
    ):
        signal.connect(on_mfa_changed, dispatch_uid=f"custodia.sessions.mfa.{number}")

    panel = (
        (account_signals.user_logged_in, on_sign_in),
        (auth_signals.user_logged_out, on_logout),
        (account_signals.password_changed, on_password_recorded),
        (account_signals.password_set, on_password_recorded),
        (account_signals.password_reset, on_password_reset),
        (account_signals.email_changed, on_email_changed),
        (mfa_signals.authenticator_added, on_mfa_added),
        (mfa_signals.authenticator_reset, on_mfa_reset),
        (mfa_signals.authenticator_removed, on_mfa_removed),
    )
    for signal, receiver in panel:
        signal.connect(receiver, dispatch_uid=f"custodia.panel.{receiver.__name__}")
