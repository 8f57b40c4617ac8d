"""The second-factor code forms allauth shows (MFA_FORMS), behind the per-user code pause.

A wrong code is an audit event and counts towards the user's code pause (accounts/ratelimit.py);
the pause that a series of them starts is mailed to the person (accounts/notifications.py).
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.core import context
from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from django.core.exceptions import ValidationError

from custodia.accounts.notifications import notify_code_lockout
from custodia.accounts.ratelimit import code_locked_until, record_code_failure, record_code_success
from custodia.core.audit import AuditAction, Outcome, record


class _CodeThrottle:
    """allauth's code check behind the user's code pause; wrong codes count towards it.

    allauth's own limit on codes rides on its `login_failed` rate, which Custodia leaves empty
    (see settings); this is the per-account limit in its place. While a pause
    lasts, every code is refused, the right one too, so guessing on gains nothing.
    """

    user: Any

    def clean_code(self) -> str:
        """Refuse while paused; otherwise allauth's check, counting a wrong code."""
        request = context.request
        if code_locked_until(request, self.user) is not None:
            raise get_account_adapter().validation_error("too_many_login_attempts")
        try:
            code = super().clean_code()  # type: ignore[misc]
        except ValidationError as error:
            if error.code == "incorrect_code":
                record(AuditAction.MFA_FAILED, user=self.user, outcome=Outcome.FAILED)
                lockout = record_code_failure(self.user)
                if lockout is not None:
                    notify_code_lockout(request, self.user, lockout)
            raise
        record_code_success(self.user)
        return str(code)


class ThrottledAuthenticateForm(_CodeThrottle, AuthenticateForm):
    """The second step of sign-in (MFA_FORMS["authenticate"])."""


class ThrottledReauthenticateForm(_CodeThrottle, ReauthenticateForm):
    """A code to re-authenticate (MFA_FORMS["reauthenticate"])."""
