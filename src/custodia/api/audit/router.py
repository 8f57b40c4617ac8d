"""API endpoints of the audit trail: the owner's events, a client's own, and the SIEM feed."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from custodia.api.audit.export import feed as build_feed
from custodia.api.audit.schemas import (
    AuditEventPage,
    AuditFilters,
    FeedParams,
    OwnRecordEventOut,
    OwnRecordEventPage,
    PageParams,
)
from custodia.api.auth import actor_of
from custodia.audit import access

router = Router(tags=["audit"])


def _page(page: access.EventPage) -> AuditEventPage:
    return AuditEventPage.model_validate({"items": page.events, "next_before": page.older})


@router.get("/events", response=AuditEventPage)
def list_events(
    request: HttpRequest, filters: Query[AuditFilters], paging: Query[PageParams]
) -> AuditEventPage:
    """The business's events, newest first (owners): by `person` (user id), `client` (id;
    single and bulk reads), `action`, and time in [`since`, `until`). Reading them is an event."""
    actor = actor_of(request)
    page = access.read_events_page(
        actor, filters.to_filters(), before=paging.before, size=paging.limit
    )
    return _page(page)


@router.get("/events/mine", response=OwnRecordEventPage)
def list_own_record_events(request: HttpRequest, paging: Query[PageParams]) -> OwnRecordEventPage:
    """For a client: the events about your own record (who read or changed it, and when),
    newest first."""
    actor = actor_of(request)
    events = access.events_about_own_record(actor)
    page = access.page_of(events, before=paging.before, size=paging.limit)
    lines = access.describe(actor, page.events)
    return OwnRecordEventPage(
        items=[OwnRecordEventOut.from_line(line) for line in lines], next_before=page.older
    )


@router.get(
    "/feed",
    response={200: None},
    openapi_extra={
        # 200 as a number, like ninja's own key for `response`: a "200" string would be a
        # second "200" in the JSON document, which Swagger UI refuses to parse.
        "responses": {
            200: {
                "description": "One event per line (the fields of AuditEventOut), oldest first;"
                " `X-Next-After` is the `after` of the next call.",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            }
        }
    },
)
def siem_feed(request: HttpRequest, params: Query[FeedParams]) -> HttpResponse:
    """The SIEM export (owners): events with ids above `after`, as JSON lines in id order.

    Resume with the `X-Next-After` header's id. Events appear once they are 30 seconds old, so
    that none committed late is skipped. Each fetch is itself an event.
    """
    result = build_feed(actor_of(request), params.after, params.limit)
    response = HttpResponse(result.body, content_type="application/x-ndjson")
    response["X-Next-After"] = str(result.next_after)
    response["X-Event-Count"] = str(result.count)
    return response
