"""The owner's audit page and its CSV and JSON exports: thin doors onto access.py and export.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from custodia.api.audit.export import Format, export_events
from custodia.audit import access
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.tenancy.access import list_members
from custodia.web.audit.forms import AuditFilterForm
from custodia.web.decorators import member_required
from custodia.web.forms import form_action

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def _invalid_filters(errors: Mapping[str, Sequence[str]]) -> HttpResponse:
    # A download link has no page to show errors on: a plain 400 that names each field's fault.
    problems = "; ".join(
        f"{field}: {message}" if field != "__all__" else message
        for field, messages in errors.items()
        for message in messages
    )
    return HttpResponse(f"Invalid filters: {problems}", status=400, content_type="text/plain")


def _filter_form(request: HttpRequest, actor: Actor) -> AuditFilterForm:
    return AuditFilterForm(request.GET, members=list_members(actor))


@require_safe
@member_required(Permission.AUDIT_READ)
def audit_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The business's audit trail, filtered, newest first, 50 a page."""
    form = _filter_form(request, actor)
    return form_action(
        request,
        form,
        lambda: access.read_events_page(
            actor,
            form.filters(),
            before=form.cleaned_data["before"],
            after=form.cleaned_data["after"],
        ),
        done=lambda page: _audit_page(request, actor, form, page),
        page=lambda status: _audit_page(request, actor, form, None, status=status),
    )


def _audit_page(
    request: HttpRequest,
    actor: Actor,
    form: AuditFilterForm,
    page: access.EventPage | None,
    *,
    status: int = 200,
) -> HttpResponse:
    query = request.GET.copy()
    for name in AuditFilterForm.CURSORS:
        query.pop(name, None)
    context = {
        "form": form,
        "page": page,
        "lines": access.describe(actor, page.events) if page else [],
        "filter_query": query.urlencode(),
    }
    return render(request, "audit/list.html", context, status=status)


@require_safe
@member_required(Permission.AUDIT_READ)
def audit_export(request: HttpRequest, actor: Actor, fmt: Format) -> HttpResponse:
    """The filtered trail as a file (at most EXPORT_MAX_ROWS events); the export is an event."""
    form = _filter_form(request, actor)
    if not form.is_valid():
        return _invalid_filters(
            {name: [str(e) for e in errors] for name, errors in form.errors.items()}
        )
    try:
        export = export_events(actor, form.filters(), fmt)
    except ValidationError as exc:
        return _invalid_filters(exc.message_dict)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    response = HttpResponse(export.body, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    response["X-Export-Count"] = str(export.count)
    if export.truncated:
        response["X-Export-Truncated"] = "true"
    return response


@require_safe
@member_required()
def audit_heads(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Every signed checkpoint's chain heads of the business, as a JSON file to keep (owners
    only: anyone else gets a 404); the download is an event."""
    if not actor.can(Permission.AUDIT_READ):
        raise Http404("No such page.")
    document = access.checkpoint_heads(actor)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    response = JsonResponse(document, json_dumps_params={"indent": 2})
    slug = actor.business.slug
    response["Content-Disposition"] = f'attachment; filename="audit-heads-{slug}-{stamp}.json"'
    return response
