"""Custodia's allauth account adapter: the client address, per-account lockout, equal answers.

Every hook keeps allauth's flow and adds to it; the lockout lives in accounts/throttle.py and its
notice in accounts/notifications.py.
"""

from __future__ import annotations

import html
import logging
import threading
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import Login
from allauth.core import context
from allauth.core.internal import ratelimit as allauth_ratelimit
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import transaction
from django.http import HttpRequest
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string

from custodia.accounts import challenge, throttle
from custodia.accounts.links import public_mail_context
from custodia.accounts.notifications import notify_lockout
from custodia.core.audit import AuditAction, Outcome, record

logger = logging.getLogger(__name__)

# Hashed when an answer must cost what a real password check costs; never a usable password.
TIMING_DUMMY_PASSWORD = "custodia-timing-equaliser"  # noqa: S105
# Custodia's per-address limit on failed password sign-ins (ACCOUNT_RATE_LIMITS).
ADDRESS_LIMIT_ACTION = "login_failed_address"


def _login_name(credentials: dict[str, Any]) -> str:
    return str(credentials.get("email") or credentials.get("username") or "")


def send_after_commit(message: EmailMessage) -> None:
    """Send once the request's transaction commits, beside the response: a mail of a rolled-back
    change is never sent, an SMTP round trip never shows in the answer's timing, and an SMTP
    failure is logged instead of failing the login, reset or change that caused it."""
    transaction.on_commit(
        lambda: threading.Thread(target=send_quietly, args=(message,), daemon=True).start()
    )


def send_quietly(message: EmailMessage) -> None:
    """Send, and on failure log the error's type only (an SMTP error may quote the message)."""
    try:
        message.send()
    except Exception as error:  # noqa: BLE001 - a lost mail must not surface anywhere else
        logger.warning("A mail could not be sent (%s).", type(error).__name__)


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """allauth's mails (confirmations, resets, notices) go out after commit (see above), their
        links on the public URL, whatever Host the request named (accounts/links.py)."""
        context = public_mail_context({"email": email, **context})
        send_after_commit(self.render_mail(template_prefix, email, context))

    def add_message(
        self,
        request: HttpRequest,
        level: int,
        message_template: str | None = None,
        message_context: dict[str, Any] | None = None,
        extra_tags: str = "",
        message: str | None = None,
    ) -> None:
        """allauth's, but a message template is rendered from its own context alone: with the
        request, the page's context processors (the business, the menus: database reads) ran
        for one line of text on every sign-in."""
        if message is None and message_template:
            try:
                rendered = render_to_string(message_template, message_context or {}).strip()
            except TemplateDoesNotExist:
                return
            message = html.unescape(rendered) if rendered else None
        if message:
            messages.add_message(request, level, message, extra_tags=extra_tags)

    def get_client_ip(self, request: HttpRequest) -> str:
        """The client address as throttle.client_ip sees it (trusted proxies only)."""
        return throttle.client_ip(request)

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """The per-address limit on failed sign-ins, then the per-name pause.

        Over the address limit, a sign-in is not refused (everyone behind a shared address would
        be): it is marked, and the right password then meets an emailed code (accounts/
        challenge.py). The name's pause refuses before any password check, in the same words.
        A signed-in person re-authenticating as themselves skips the name's pause and the
        address limit: anyone can trip those with wrong passwords, and must not keep the owner
        from stepping up. Wrong passwords there still count (a stolen session guessing the
        password pauses the name and mails the owner), and allauth's per-user limit applies.
        """
        if self._reauthenticating_self(request):
            # Nor the address limit: a stranger's failures from a shared address must not block
            # a signed-in person's step-up; allauth's per-user "reauthenticate" limit holds there.
            self._login_failed_rl_usage = None
            return
        # allauth's own "login_failed" is emptied in settings: its per-address counter was also
        # consumed and wiped by second-factor checks and password resets (allauth clears it by
        # key, which for a per-address rate is the whole address). This one only passwords touch.
        self._login_failed_rl_usage = allauth_ratelimit.consume(
            request, app="allauth.account", action=ADDRESS_LIMIT_ACTION
        )
        over_limit = not self._login_failed_rl_usage
        if throttle.locked_until(request, _login_name(credentials)) is not None:
            self._rollback_login_failed_rl_usage()
            raise self.validation_error("too_many_login_attempts")
        if over_limit:
            challenge.mark_address_throttled(request)

    def reauthenticate(self, user: AbstractBaseUser, password: str) -> bool:
        """allauth's password check for the signed-in person (see pre_authenticate)."""
        self._reauthenticating_pk = user.pk
        try:
            return super().reauthenticate(user, password)
        finally:
            self._reauthenticating_pk = None

    def _reauthenticating_self(self, request: HttpRequest) -> bool:
        target = getattr(self, "_reauthenticating_pk", None)
        current = getattr(request, "user", None)
        return (
            target is not None
            and current is not None
            and current.is_authenticated
            and current.pk == target
        )

    def authenticate(self, request: HttpRequest, **credentials: Any) -> AbstractBaseUser | None:
        """allauth's check; a success ends the name's failure series.

        Not a re-authentication's success: that skipped the pause (see pre_authenticate), and
        ending the series there would restart an attacker's back-off whenever the owner steps up.
        Not from a throttled address either: there a right password counts like a wrong one until
        its emailed code is entered, so the name's pause cannot tell them apart.
        """
        user = super().authenticate(request, **credentials)
        if user is None or self._reauthenticating_self(request):
            return user
        if challenge.address_throttled(request):
            name = _login_name(credentials)
            self._tell_of_pause(request, name, throttle.record_failure(name))
        else:
            throttle.record_success(_login_name(credentials))
        return user

    def is_login_by_code_required(self, login: Login) -> bool:
        """A password sign-in from a throttled address needs the emailed code (challenge.py)."""
        if challenge.address_throttled(context.request):
            return True
        return super().is_login_by_code_required(login)

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        """Count the failure for the name; when it starts a pause, tell the account's owner."""
        name = _login_name(credentials)
        lockout = throttle.record_failure(name)
        # By the keyed digest of the name tried, never the name: it may be anyone's address.
        record(
            AuditAction.LOGIN_FAILED,
            user=get_user_model().objects.filter(email__iexact=name.strip()).first(),
            target_type="login",
            target_id=throttle.throttle_key(name),
            outcome=Outcome.FAILED,
        )
        self._tell_of_pause(request, name, lockout)

    def _tell_of_pause(
        self, request: HttpRequest, name: str, lockout: throttle.Lockout | None
    ) -> None:
        if lockout is not None:
            notify_lockout(request, name, lockout)

    def send_account_already_exists_mail(self, email: str) -> None:
        """Signing up with a taken address costs a password hash too, like a real signup."""
        get_user_model()().set_password(TIMING_DUMMY_PASSWORD)
        super().send_account_already_exists_mail(email)
