"""Exports: an owner starts one and downloads it once; a client downloads their own data."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.lifecycle.export import access
from custodia.lifecycle.export.actions import (
    ExportGone,
    do_download_export,
    gone_message,
    own_data_archive,
    settle,
)
from custodia.lifecycle.export.models import Export, ExportStatus
from custodia.lifecycle.export.tasks import start_export
from custodia.web.decorators import member_required
from custodia.web.forms import form_action

ZIP = "application/zip"


class StartExportForm(forms.Form):
    """Nothing to fill in: the button, and its CSRF token."""


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.BUSINESS_EXPORT)
def export_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The owner's exports, and the button that starts one (step-up inside the action)."""
    form = StartExportForm(request.POST if request.method == "POST" else None)

    def page(status: int) -> HttpResponse:
        exports = [settle(export, actor=actor) for export in access.list_own_exports(actor)[:20]]
        context = {"form": form, "exports": exports, "hours": settings.EXPORT_TTL_HOURS}
        return render(request, "export/list.html", context, status=status)

    if request.method != "POST":
        return page(200)
    return form_action(
        request,
        form,
        lambda: start_export(actor=actor),
        success="The export has started. This page shows its progress.",
        done=lambda started: redirect(started.job_url),
        page=page,
    )


def _detail(
    request: HttpRequest, actor: Actor, export: Export, *, status: int = 200
) -> HttpResponse:
    gone = access.is_gone(export)
    context = {
        "export": export,
        "gone": gone,
        "gone_message": gone_message(export) if gone else "",
        "running": export.status == ExportStatus.RUNNING,
        "job_url": reverse("jobs:detail", args=[export.job_id]) if export.job_id else "",
    }
    return render(request, "export/detail.html", context, status=410 if gone else status)


@require_safe
@member_required(Permission.BUSINESS_EXPORT)
def export_detail(request: HttpRequest, actor: Actor, export_id: str) -> HttpResponse:
    """One export of the owner's: its progress, the download button, or that it is gone (410)."""
    export = settle(access.access_export_by_id(actor, export_id), actor=actor)
    return _detail(request, actor, export)


@require_POST
@member_required(Permission.BUSINESS_EXPORT)
def export_download(request: HttpRequest, actor: Actor, export_id: str) -> HttpResponse:
    """The archive, once (a POST: a link preview or prefetch must not use it up)."""
    try:
        download = do_download_export(export_id, actor=actor)
    except ExportGone as gone:
        return _detail(request, actor, gone.export)
    except ValidationError as exc:  # pragma: no cover - the action raises none today
        return HttpResponse("; ".join(exc.messages), status=400)
    # Streamed from its temporary file (an export can be large); the page decorators are typed
    # for HttpResponse, of which FileResponse is a streaming sibling.
    return FileResponse(  # type: ignore[return-value]
        download.file, as_attachment=True, filename=download.filename, content_type=ZIP
    )


@require_POST
@member_required(Permission.CLIENTS_SELF_EXPORT)
def own_data_download(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A client's own data, built at once: their record, visits, reports and who accessed it."""
    with own_data_archive(actor) as handle:
        body = handle.read()  # one client's data: small
    day = timezone.now().strftime("%Y%m%d")
    response = HttpResponse(body, content_type=ZIP)
    response["Content-Disposition"] = f'attachment; filename="my-data-{day}.zip"'
    return response
