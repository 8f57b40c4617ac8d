"""A sign-in from a throttled address: a challenge for the right password, never a flat refusal.

After `login_failed_address` failures from one address (ACCOUNT_RATE_LIMITS), a password
sign-in from it is no longer refused outright, which locked out everyone behind an office's
shared address. Instead every password tried from there (right or wrong) gets the same answer: a
page asking for the one-time code emailed to the account's address. A right password gets a real
code (allauth's login-by-code stage, made required for this login by the adapter); a wrong one gets
a look-alike whose every code fails, with no mail. So the throttled address learns nothing about
the password it tried: no cheaper guesses. Each password tried there also counts in the name's
failure series (a right one too, until its code is entered), so the per-name pause still bounds
guesses and mails. Wrong codes count in the user's code series (accounts/ratelimit.py), and allauth
allows three tries per code. A person with a second factor is asked for it after the code; a
passkey sign-in never meets the address limit.
"""

from __future__ import annotations

from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.adapter import get_adapter
from allauth.account.forms import ConfirmLoginCodeForm, LoginForm
from allauth.account.internal.flows.login_by_code import LoginCodeVerificationProcess
from allauth.account.models import Login
from allauth.account.stages import LoginByCodeStage, LoginStageController
from allauth.core import context
from allauth.core.internal.httpkit import headed_redirect_response
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from custodia.accounts import ratelimit
from custodia.accounts.notifications import notify_code_lockout
from custodia.core.audit import AuditAction, Outcome, record

# Set on the request by AccountAdapter.pre_authenticate when the address is over its limit.
THROTTLED_ATTRIBUTE = "custodia_address_throttled"


def mark_address_throttled(request: HttpRequest) -> None:
    """Remember, for this request only, that its address is over the failed-sign-in limit."""
    setattr(request, THROTTLED_ATTRIBUTE, True)


def address_throttled(request: HttpRequest | None) -> bool:
    """Whether this request's password sign-in came from an address over its limit."""
    return bool(getattr(request, THROTTLED_ATTRIBUTE, False))


def _start_decoy(request: HttpRequest, email: str) -> HttpResponse:
    """The code page a right password would reach, for a wrong one: no mail, no code can pass."""
    login = Login(user=None, email=email)
    login.state["stages"] = {"current": LoginByCodeStage.key}
    stage = LoginByCodeStage(LoginStageController(request, login), request, login)
    # The state the real stage leaves, less the user and the code (allauth never accepts "").
    stage.state.update(LoginCodeVerificationProcess.initial_state(user=None, email=email))
    stage.state["initiated_by_user"] = False
    stage.state["login_by_code_required"] = True
    process = LoginCodeVerificationProcess(stage=stage)
    process.add_sent_message({"email": email, "recipient": email})
    process.persist()
    return headed_redirect_response("account_confirm_login_code")


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
            return _start_decoy(request, str(self.cleaned_data["login"]))
        return super().login(request, redirect_url=redirect_url)  # type: ignore[no-any-return]


def _pending_login(request: HttpRequest) -> Login | None:
    stage = LoginStageController.enter(request, LoginByCodeStage.key)
    return stage.login if stage is not None else None


class ThrottledConfirmLoginCodeForm(ConfirmLoginCodeForm):
    """The emailed sign-in code, behind the user's code pause; wrong codes count towards it."""

    def clean_code(self) -> str:
        """Refuse while the user's codes are paused; otherwise allauth's check, counted."""
        request = context.request
        login = _pending_login(request)
        user = login.user if login is not None else None
        if user is not None and ratelimit.code_locked_until(request, user) is not None:
            raise get_adapter().validation_error("too_many_login_attempts")
        try:
            code = super().clean_code()
        except ValidationError as error:
            if user is not None and error.code == "incorrect_code":
                record(AuditAction.MFA_FAILED, user=user, outcome=Outcome.FAILED)
                lockout = ratelimit.record_code_failure(user)
                if lockout is not None:
                    notify_code_lockout(request, user, lockout)
            raise
        if user is not None and login is not None:
            # The code proves the mailbox: the name's series (which the password fed) ends here.
            ratelimit.record_code_success(user)
            ratelimit.record_success(login.email or user.email)
        return str(code)
