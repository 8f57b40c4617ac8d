"""A sign-in from a throttled address: a challenge for the right password, never a flat refusal.

After `login_failed_address` failures from one address (ACCOUNT_RATE_LIMITS), a password
sign-in from it is no longer refused outright, which locked out everyone behind an office's
shared address. Instead every password tried from there (right or wrong) gets the same answer: a
page asking for the one-time code emailed to the account's address. A right password gets a real
code (allauth's login-by-code stage, made required for this login by the adapter); a wrong one gets
a look-alike whose every code fails, with no mail. So the throttled address learns nothing about
the password it tried: no cheaper guesses. Each password tried there also counts in the name's
failure series (a right one too, until its code is entered), so the per-name pause still bounds
guesses and mails. Wrong codes count in the user's code series (accounts/throttle.py), and allauth
allows three tries per code. A person with a second factor is asked for it after the code; a
passkey sign-in never meets the address limit. The forms allauth uses for it are in
accounts/forms.py (ChallengingLoginForm, ThrottledConfirmLoginCodeForm).
"""

from __future__ import annotations

from allauth.account.internal.flows.login_by_code import LoginCodeVerificationProcess
from allauth.account.models import Login
from allauth.account.stages import LoginByCodeStage, LoginStageController
from allauth.core.internal.httpkit import headed_redirect_response
from django.http import HttpRequest, HttpResponse

# Set on the request by AccountAdapter.pre_authenticate when the address is over its limit.
THROTTLED_ATTRIBUTE = "custodia_address_throttled"


def mark_address_throttled(request: HttpRequest) -> None:
    """Remember, for this request only, that its address is over the failed-sign-in limit."""
    setattr(request, THROTTLED_ATTRIBUTE, True)


def address_throttled(request: HttpRequest | None) -> bool:
    """Whether this request's password sign-in came from an address over its limit."""
    return bool(getattr(request, THROTTLED_ATTRIBUTE, False))


def start_decoy(request: HttpRequest, email: str) -> HttpResponse:
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


def pending_login(request: HttpRequest) -> Login | None:
    """The sign-in waiting for its emailed code, if any."""
    stage = LoginStageController.enter(request, LoginByCodeStage.key)
    return stage.login if stage is not None else None
