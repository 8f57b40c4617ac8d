"""Reads of the platform's records: who is an operator, the reports, the businesses' summary.

Every console read records itself on the platform chain of the audit trail (the operator's user
id, no business), as `operator.console.read` or `vulnerability_report.read`. Row-level security
is the backstop: only an active operator's context reads a report at all
(platform/migrations/0002_guards.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from custodia.core.actor import Actor, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.dbcontext import fetch_all_with_key, set_db_context
from custodia.platform.models import Operator, VulnerabilityReport

BUSINESSES_SQL = "SELECT * FROM custodia_platform_businesses(%s)"
# The context in which operator rows may be written: only `custodia operator` sets it.
CONSOLE_LOOKUP = "platform-console"


def console_context(user: Any = None) -> None:
    """The server console's context (`custodia operator`): operator rows readable and writable,
    and, given a login, that login's own rows (its memberships, its sessions). Inside a
    transaction."""
    set_db_context(user_id=getattr(user, "pk", None), lookup=CONSOLE_LOOKUP)


def is_active_operator(user: Any) -> bool:
    """Whether this login is an operator not disabled (read in the login's own context)."""
    if getattr(user, "pk", None) is None:
        return False
    return Operator.objects.filter(user_id=user.pk, disabled_at__isnull=True).exists()


OPERATOR_NEVER_MEMBER = (
    "This login is a platform operator's, which can never be a member of a business: use "
    "another email address."
)


def refuse_operator_login(user: Any) -> None:
    """A ValidationError if the login is an operator's, active or disabled (read in a context
    naming the login); the database refuses the membership anyway (platform/0002_guards.py)."""
    if Operator.objects.filter(user_id=user.pk).exists():
        raise ValidationError(OPERATOR_NEVER_MEMBER)


def record_console_read(actor: Actor, page: str, *, count: int) -> None:
    """A console page read: which page and how many rows it showed (never their contents)."""
    require_active(actor)
    record(
        AuditAction.OPERATOR_CONSOLE_READ,
        user=actor.user,
        target_type="console",
        target_id=page,
        detail={"page": page, "count": count},
    )


def reports_for_console(actor: Actor, now: dt.datetime | None = None) -> list[VulnerabilityReport]:
    """Every report, overdue first (oldest first), then unanswered, then the rest, newest first."""
    require_active(actor)
    now = now or timezone.now()
    reports = list(VulnerabilityReport.objects.order_by("-received_at"))

    def rank(report: VulnerabilityReport) -> tuple[int, float]:
        if report.is_overdue(now):
            return (0, report.received_at.timestamp())
        if not report.answered:
            return (1, report.received_at.timestamp())
        return (2, -report.received_at.timestamp())

    reports.sort(key=rank)
    record_console_read(actor, "reports", count=len(reports))
    return reports


def access_report_by_id(actor: Actor, report_id: uuid.UUID) -> VulnerabilityReport:
    """One report for an operator (recorded as read), or 404."""
    require_active(actor)
    report = VulnerabilityReport.objects.filter(pk=report_id).first()
    if report is None:
        raise Http404("No such report.")
    record(
        AuditAction.REPORT_READ,
        user=actor.user,
        target=report,
        detail={"reference": report.reference},
    )
    return report


@dataclass(frozen=True)
class BusinessSummary:
    """What an operator sees of a business: no customer data, no member's name."""

    id: uuid.UUID
    name: str
    created_at: dt.datetime
    closed_at: dt.datetime | None
    members: int


def businesses_for_console(actor: Actor) -> list[BusinessSummary]:
    """Each business's name, creation, closing and member count (an operator's context only)."""
    require_active(actor)
    rows = fetch_all_with_key(BUSINESSES_SQL, [])
    summaries = [BusinessSummary(*row) for row in rows]
    record_console_read(actor, "businesses", count=len(summaries))
    return summaries


def active_operator_emails() -> list[str]:
    """The addresses of the operators not disabled, whose logins are active (sets the console's
    context: in a transaction of its own, such as a job's)."""
    console_context()
    operators = Operator.objects.filter(disabled_at__isnull=True, user__is_active=True)
    return sorted({email for email in operators.values_list("user__email", flat=True) if email})


def operators_for_console() -> list[Operator]:
    """Every operator with their login, for `custodia operator list` (sets the console's
    context: inside a transaction)."""
    console_context()
    return list(Operator.objects.select_related("user").order_by("created_at"))
