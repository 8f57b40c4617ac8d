"""Writes of the platform's records: operator accounts (from the console only), and the
vulnerability reports (received from anyone, answered by an operator after a fresh step-up).

Each runs in one transaction with its audit event on the platform chain; mail leaves through
allauth's adapter (after the commit, accounts/adapter.py).
"""

from __future__ import annotations

import secrets
from typing import Any

from allauth.account.adapter import get_adapter
from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress
from allauth.account.utils import user_pk_to_url_str
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from custodia.accounts.links import public_mail_context, public_url
from custodia.accounts.models import User, normalize_email
from custodia.accounts.sessions import end_sessions
from custodia.accounts.stepup import require_step_up
from custodia.core.actor import Actor, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.dbcontext import set_db_context
from custodia.platform.access import console_context, is_active_operator
from custodia.platform.models import (
    DETAILS_MAX,
    FIRST_RESPONSE_TARGET,
    RESPONSE_MAX,
    SUMMARY_MAX,
    Operator,
    ReportStatus,
    VulnerabilityReport,
)
from custodia.tenancy.models import Membership

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class OperatorError(ValueError):
    """A console request that cannot be carried out; the message says why (no secret in it)."""


# --- Operators (the console) ----------------------------------------------------------------


def do_create_operator(email: str, name: str) -> Operator:
    """Make `email` an operator (a new login when the address is new) and mail them a link to
    set their password; never a member of a business."""
    email = normalize_email(email)
    try:
        validate_email(email)
    except ValidationError:
        raise OperatorError("--email: enter a valid email address.") from None
    name = name.strip()
    if not name or len(name) > 120:
        raise OperatorError("--name: give the operator's name (at most 120 characters).")
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).first()
        new_login = user is None
        if user is None:
            user = User.objects.create_user(email, None, full_name=name)
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        console_context(user)
        if Operator.objects.filter(user=user).exists():
            raise OperatorError(f"{email} is already an operator.")
        if Membership.objects.filter(user=user, is_active=True).exists():
            raise OperatorError(
                f"{email} is a member of a business: an operator's login must be theirs alone."
                " Use another address for the operator."
            )
        operator = Operator.objects.create(user=user)
        record(AuditAction.OPERATOR_CREATE, target=operator, detail={"new_login": new_login})
        message = _set_password_mail(user)
    # Sent here, once committed, and waited for: a command's process ends right after it (the
    # web's mail goes out on a thread after the commit, accounts/adapter.py).
    try:
        message.send()
    except Exception as error:  # noqa: BLE001 - the operator exists: say what to do next
        raise OperatorError(
            f"The operator {email} was created, but the mail with their set-password link could"
            f" not be sent ({type(error).__name__}). Check the SMTP settings; they can ask for a"
            " link from the sign-in page's password reset."
        ) from None
    return operator


def _set_password_mail(user: User) -> EmailMessage:
    key = default_token_generator.make_token(user)
    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": key},
    )
    context = {
        "email": user.email,
        "name": user.full_name,
        "password_url": public_url(path),
        "console_url": public_url(reverse("operator_console")),
    }
    return get_adapter().render_mail(
        "platform/email/operator_created", user.email, public_mail_context(context)
    )


def do_disable_operator(email: str) -> int:
    """Disable the operator with this email and end their sessions; how many sessions ended."""
    with transaction.atomic():
        user = User.objects.filter(email__iexact=normalize_email(email)).first()
        if user is not None:
            console_context(user)
        operator = Operator.objects.filter(user=user).first() if user is not None else None
        if operator is None or user is None:
            raise OperatorError(f"No operator has the email {email.strip()!r}.")
        if operator.disabled_at is not None:
            raise OperatorError(f"{user.email} is already disabled.")
        operator.disabled_at = timezone.now()
        operator.save(update_fields=["disabled_at"])
        record(AuditAction.OPERATOR_DISABLE, target=operator)
        set_db_context(user_id=user.pk)
        return end_sessions(user)


# --- Vulnerability reports --------------------------------------------------------------------


def _reference() -> str:
    return "VR-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(10))


def _clean(value: str, field: str, limit: int, *, required: bool) -> str:
    value = value.strip()
    if required and not value:
        raise ValidationError({field: "This field is required."})
    if len(value) > limit:
        raise ValidationError({field: f"At most {limit:,} characters (this has {len(value):,})."})
    return value


def do_submit_report(*, summary: str, details: str, reporter_email: str) -> VulnerabilityReport:
    """Store a report from the public form and acknowledge it by email (its reference only)."""
    errors: dict[str, Any] = {}
    cleaned: dict[str, str] = {}
    for field, value, limit, required in (
        ("summary", summary, SUMMARY_MAX, True),
        ("details", details, DETAILS_MAX, True),
        ("reporter_email", reporter_email, 254, False),
    ):
        try:
            cleaned[field] = _clean(value, field, limit, required=required)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if cleaned.get("reporter_email"):
        try:
            validate_email(cleaned["reporter_email"])
        except ValidationError:
            errors["reporter_email"] = ["Enter a valid email address, or leave it empty."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        report = VulnerabilityReport.objects.create(
            reference=_reference(),
            received_at=timezone.now(),
            reporter_email=cleaned["reporter_email"],
            summary=cleaned["summary"],
            details=cleaned["details"],
        )
        record(
            AuditAction.REPORT_SUBMIT,
            target=report,
            detail={"reference": report.reference, "email": bool(report.reporter_email)},
        )
        if report.reporter_email:
            get_adapter().send_mail(
                "platform/email/report_received",
                report.reporter_email,
                {
                    "reference": report.reference,
                    "target_hours": int(FIRST_RESPONSE_TARGET.total_seconds() // 3600),
                },
            )
    return report


def require_operator(actor: Actor) -> None:
    """The actor is the active one, and an active operator acting for no business."""
    require_active(actor)
    if actor.tenant_id is not None or not is_active_operator(actor.user):
        raise PermissionDenied("Only a platform operator may do this.")


def do_respond_to_report(
    report: VulnerabilityReport, *, response: str, actor: Actor
) -> VulnerabilityReport:
    """Record the first response (which stops the clock) and mail it to the reporter."""
    require_operator(actor)
    require_step_up(actor)
    response = _clean(response, "response", RESPONSE_MAX, required=True)
    with transaction.atomic():
        report = VulnerabilityReport.objects.select_for_update().get(pk=report.pk)
        if report.answered:
            raise ValidationError("This report already has its first response.")
        now = timezone.now()
        report.first_response_at = now
        report.first_response_by = actor.user
        report.response = response
        fields = ["first_response_at", "first_response_by", "response"]
        if report.status == ReportStatus.NEW:
            report.status = ReportStatus.TRIAGED
            report.status_changed_at = now
            fields += ["status", "status_changed_at"]
        report.save(update_fields=fields)
        record(
            AuditAction.REPORT_RESPOND,
            user=actor.user,
            target=report,
            detail={"reference": report.reference, "mailed": bool(report.reporter_email)},
        )
        if report.reporter_email:
            get_adapter().send_mail(
                "platform/email/report_response",
                report.reporter_email,
                {"reference": report.reference, "response": response},
            )
    return report


def do_set_report_status(
    report: VulnerabilityReport, status: str, *, actor: Actor
) -> VulnerabilityReport:
    """Move a report to another status (new, triaged, resolved, not applicable)."""
    require_operator(actor)
    require_step_up(actor)
    if status not in ReportStatus.values:
        raise ValidationError({"status": "Choose one of the listed statuses."})
    with transaction.atomic():
        report = VulnerabilityReport.objects.select_for_update().get(pk=report.pk)
        if report.status == status:
            return report
        previous = report.status
        report.status = status
        report.status_changed_at = timezone.now()
        report.save(update_fields=["status", "status_changed_at"])
        record(
            AuditAction.REPORT_STATUS,
            user=actor.user,
            target=report,
            detail={"reference": report.reference, "from": previous, "to": status},
        )
    return report
