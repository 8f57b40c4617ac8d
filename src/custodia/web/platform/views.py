"""The operator console (/operator/) and the public vulnerability report form (/security/report/).

The console is for active operators alone: anyone else signed in gets 404 on every page, a
visitor is sent to log in, and an operator without a second factor is sent to enrol by
MFAPolicyMiddleware before any view runs. Every page read is recorded by its access function,
every change asks for a fresh step-up inside its action (docs/operators.md).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from allauth.core.internal import ratelimit
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.core.actor import acting_as
from custodia.detection.access import list_platform_alerts
from custodia.detection.rules import rule_named
from custodia.lifecycle.backups import BackupError, database_store, drill_records
from custodia.platform import access, actions
from custodia.platform.models import FIRST_RESPONSE_TARGET
from custodia.tenancy.actors import OperatorActor, operator_actor_for_session
from custodia.web.forms import form_action
from custodia.web.platform.forms import ReportForm, ResponseForm, StatusForm

P = ParamSpec("P")
OperatorView = Callable[Concatenate[HttpRequest, OperatorActor, P], HttpResponse]
View = Callable[Concatenate[HttpRequest, P], HttpResponse]
SAFE_METHODS = ("GET", "HEAD")
# Reports one address may send: allauth's rate limits, in its cache (docs/operators.md).
REPORT_RATE = {"security_report": "3/m/ip,10/h/ip"}
TOO_MANY_REPORTS = (
    "Too many reports from your network just now. Please wait an hour, or write to the "
    "address in /.well-known/security.txt."
)


def operator_required(view: OperatorView[P]) -> View[P]:
    """An active operator, acting for no business; 404 for anyone else signed in."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.path)
        actor = operator_actor_for_session(request)
        if actor is None:
            raise Http404("No such page.")
        with acting_as(actor, durable=request.method not in SAFE_METHODS):
            return view(request, actor, *args, **kwargs)

    return wrapper


# --- The public report form -------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def report_form(request: HttpRequest) -> HttpResponse:
    """Anyone may report a vulnerability; the answer names only the report's reference."""
    form = ReportForm(request.POST if request.method == "POST" else None)

    def page(status: int) -> HttpResponse:
        context = {"form": form, "target_hours": _target_hours()}
        return render(request, "platform/report_form.html", context, status=status)

    if request.method != "POST":
        return page(200)
    usage = ratelimit.consume(
        request, app="custodia.platform", action="security_report", config=REPORT_RATE
    )
    if not usage:
        form.add_error(None, TOO_MANY_REPORTS)
        return page(429)

    def submit() -> Any:
        return actions.do_submit_report(
            summary=form.cleaned_data["summary"],
            details=form.cleaned_data["details"],
            reporter_email=form.cleaned_data["reporter_email"],
        )

    def done(report: Any) -> HttpResponse:
        messages.success(
            request,
            f"Thank you: your report is stored under the reference {report.reference}."
            + (
                " We have sent an acknowledgement to your address." if report.reporter_email else ""
            ),
        )
        return redirect("security_report")

    return form_action(request, form, submit, done=done, page=page)


def _target_hours() -> int:
    return int(FIRST_RESPONSE_TARGET.total_seconds() // 3600)


# --- The console ------------------------------------------------------------------------------


@require_safe
@operator_required
def console(request: HttpRequest, actor: OperatorActor) -> HttpResponse:
    """The reports, overdue ones first and marked, each with its age and whether answered."""
    now = timezone.now()
    reports = access.reports_for_console(actor, now)
    rows = [
        {"report": report, "age": report.age(now), "overdue": report.is_overdue(now)}
        for report in reports
    ]
    context = {
        "rows": rows,
        "overdue": sum(1 for row in rows if row["overdue"]),
        "target_hours": _target_hours(),
    }
    return render(request, "platform/console.html", context)


@require_safe
@operator_required
def report_detail(request: HttpRequest, actor: OperatorActor, report_id: uuid.UUID) -> HttpResponse:
    """One report, with the first-response and status forms."""
    report = access.access_report_by_id(actor, report_id)
    return _report_page(
        request, report, ResponseForm(), StatusForm(initial={"status": report.status})
    )


def _report_page(
    request: HttpRequest,
    report: Any,
    response_form: ResponseForm,
    status_form: StatusForm,
    status: int = 200,
) -> HttpResponse:
    now = timezone.now()
    context = {
        "report": report,
        "age": report.age(now),
        "overdue": report.is_overdue(now),
        "response_form": response_form,
        "status_form": status_form,
        "target_hours": _target_hours(),
    }
    return render(request, "platform/report.html", context, status=status)


@require_POST
@operator_required
def report_respond(
    request: HttpRequest, actor: OperatorActor, report_id: uuid.UUID
) -> HttpResponse:
    """Record the first response (step-up inside the action)."""
    report = access.access_report_by_id(actor, report_id)
    form = ResponseForm(request.POST)
    return form_action(
        request,
        form,
        lambda: actions.do_respond_to_report(
            report, response=form.cleaned_data["response"], actor=actor
        ),
        done=lambda _report: redirect("operator_report", report_id=report.pk),
        page=lambda status: _report_page(
            request, report, form, StatusForm(initial={"status": report.status}), status
        ),
        success="First response recorded.",
    )


@require_POST
@operator_required
def report_status(request: HttpRequest, actor: OperatorActor, report_id: uuid.UUID) -> HttpResponse:
    """Move the report to another status (step-up inside the action)."""
    report = access.access_report_by_id(actor, report_id)
    form = StatusForm(request.POST)
    return form_action(
        request,
        form,
        lambda: actions.do_set_report_status(report, form.cleaned_data["status"], actor=actor),
        done=lambda _report: redirect("operator_report", report_id=report.pk),
        page=lambda status: _report_page(request, report, ResponseForm(), form, status),
        success="Status changed.",
    )


@dataclass(frozen=True)
class BackupLine:
    """One backup as the console shows it: no table names' contents, no customer data."""

    id: str
    created_at: dt.datetime | None
    engine: str
    size: int
    rows: int
    problem: str | None


@require_safe
@operator_required
def backups(request: HttpRequest, actor: OperatorActor) -> HttpResponse:
    """The backup store's backups and the drill log, latest first, failures marked."""
    store_problem = drill_problem = None
    lines: list[BackupLine] = []
    drills: list[dict[str, object]] = []
    store = database_store()
    try:
        found = store.backups()
    except BackupError as exc:
        store_problem = str(exc)
    else:
        for backup in reversed(found):
            manifest = backup.manifest
            lines.append(
                BackupLine(
                    id=backup.id,
                    created_at=backup.created_at,
                    engine=str(manifest.get("engine", "")),
                    size=int(manifest.get("dump", {}).get("size", 0) or 0),
                    rows=sum(manifest.get("tables", {}).values()) if backup.problem is None else 0,
                    problem=backup.problem,
                )
            )
    try:
        drills = [_drill_line(record) for record in reversed(drill_records())]
    except BackupError as exc:
        drill_problem = str(exc)
    access.record_console_read(actor, "backups", count=len(lines) + len(drills))
    context = {
        "store_label": store.label,
        "lines": lines,
        "store_problem": store_problem,
        "drills": drills,
        "drill_problem": drill_problem,
    }
    return render(request, "platform/backups.html", context)


def _drill_line(record: dict[str, object]) -> dict[str, object]:
    try:
        at: dt.datetime | None = dt.datetime.fromisoformat(str(record.get("at", "")))
    except ValueError:
        at = None
    return {
        "at": at,
        "kind": record.get("kind", "database"),
        "backup_id": record.get("backup_id", ""),
        "ok": bool(record.get("ok")),
        "detail": record.get("detail", ""),
    }


@require_safe
@operator_required
def businesses(request: HttpRequest, actor: OperatorActor) -> HttpResponse:
    """Each business's name, creation, closing and member count: nothing of its customers."""
    return render(
        request, "platform/businesses.html", {"businesses": access.businesses_for_console(actor)}
    )


@require_safe
@operator_required
def alerts(request: HttpRequest, actor: OperatorActor) -> HttpResponse:
    """The platform-wide alerts (no business's), newest first, with their evidence."""
    found = list_platform_alerts()
    access.record_console_read(actor, "alerts", count=len(found))
    rows = [{"alert": alert, "label": rule_named(alert.rule).label} for alert in found]
    return render(request, "platform/alerts.html", {"rows": rows})
