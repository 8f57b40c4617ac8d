"""The account forms: allauth's sign-in and code forms behind Custodia's pauses, and tokens.

allauth is told to use them by settings (ACCOUNT_FORMS, MFA_FORMS). Every one-time code (TOTP,
recovery code, emailed sign-in code) is checked behind the user's code pause, and a wrong one
counts towards it (accounts/throttle.py); a password sign-in from a throttled address meets the
emailed-code challenge (accounts/challenge.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.forms import ConfirmLoginCodeForm, LoginForm
from allauth.core import context
from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from custodia.accounts.challenge import address_throttled, pending_login, start_decoy
from custodia.accounts.notifications import notify_code_lockout
from custodia.accounts.throttle import (
    code_locked_until,
    record_code_failure,
    record_code_success,
    record_success,
)
from custodia.core.audit import AuditAction, Outcome, record


def _checked_code(request: HttpRequest, user: Any, check: Callable[[], Any]) -> str:
    """Refuse while the user's codes are paused; otherwise `check`, counting a wrong code."""
    if code_locked_until(request, user) is not None:
        raise get_account_adapter().validation_error("too_many_login_attempts")
    try:
        code = check()
    except ValidationError as error:
        if error.code == "incorrect_code":
            record(AuditAction.MFA_FAILED, user=user, outcome=Outcome.FAILED)
            lockout = record_code_failure(user)
            if lockout is not None:
                notify_code_lockout(request, user, lockout)
        raise
    record_code_success(user)
    return str(code)


class _CodeThrottle:
    """allauth's code check behind the user's code pause; wrong codes count towards it.

    allauth's own limit on codes rides on its `login_failed` rate, which Custodia leaves empty
    (see settings); this is the per-account limit in its place. While a pause
    lasts, every code is refused, the right one too, so guessing on gains nothing.
    """

    user: Any

    def clean_code(self) -> str:
        """Refuse while paused; otherwise allauth's check, counting a wrong code."""
        return _checked_code(context.request, self.user, super().clean_code)  # type: ignore[misc]


class ThrottledAuthenticateForm(_CodeThrottle, AuthenticateForm):
    """The second step of sign-in (MFA_FORMS["authenticate"])."""


class ThrottledReauthenticateForm(_CodeThrottle, ReauthenticateForm):
    """A code to re-authenticate (MFA_FORMS["reauthenticate"])."""


class ChallengingLoginForm(LoginForm):
    """allauth's login form; from a throttled address a wrong password looks like a right one."""

    _decoy = False

    def clean(self) -> dict[str, Any]:
        """allauth's check; a mismatch from a throttled address goes to the look-alike code page."""
        try:
            return super().clean()  # type: ignore[no-any-return]
        except ValidationError as error:
            if error.code == "email_password_mismatch" and address_throttled(self.request):
                self._decoy = True  # counted already (AccountAdapter.authentication_failed)
                return self.cleaned_data
            raise

    def login(self, request: HttpRequest, redirect_url: str | None = None) -> HttpResponse:
        """allauth's sign-in, or the look-alike code page for a throttled wrong password."""
        if self._decoy:
            # The session's lifetime as allauth sets it after a right password: the cookie too
            # must not tell the two apart.
            remember = account_settings.SESSION_REMEMBER
            if remember is None:
                remember = self.cleaned_data["remember"]
            request.session.set_expiry(account_settings.SESSION_COOKIE_AGE if remember else 0)
            return start_decoy(request, str(self.cleaned_data["login"]))
        return super().login(request, redirect_url=redirect_url)  # type: ignore[no-any-return]


class ThrottledConfirmLoginCodeForm(ConfirmLoginCodeForm):
    """The emailed sign-in code, behind the user's code pause; wrong codes count towards it."""

    def clean_code(self) -> str:
        """Refuse while the user's codes are paused; otherwise allauth's check, counted."""
        request = context.request
        login = pending_login(request)
        user = login.user if login is not None else None
        if user is None or login is None:
            return str(super().clean_code())
        code = _checked_code(request, user, super().clean_code)
        # The code proves the mailbox: the name's series (which the password fed) ends here.
        record_success(login.email or user.email)
        return code


class TokenForm(forms.Form):
    """A new personal API token: its name and how many days it lasts."""

    name = forms.CharField(
        label="Token name", max_length=80, help_text="What will use it, e.g. “booking spreadsheet”."
    )
    days = forms.IntegerField(
        label="Valid for (days)",
        min_value=1,
        max_value=365,
        required=False,
        help_text=f"1 to 365; {settings.API_TOKEN_DEFAULT_DAYS} if empty.",
    )
