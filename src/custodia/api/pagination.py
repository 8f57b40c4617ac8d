"""Pages of API lists: limit/offset within bounds, each page recorded as a bulk read."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Schema
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import Field

from custodia.api.auth import actor_of
from custodia.audit.actions import record_bulk_read

# Far past any business's row count, and far inside PostgreSQL's bigint: a larger offset was a 500.
MAX_OFFSET = 1_000_000


class BoundedLimitOffset(LimitOffsetPagination):
    """ninja's limit/offset pagination with an upper bound on the offset (a 422 past it); a
    page of customer records is a bulk read in the audit trail."""

    class Input(Schema):
        limit: int = Field(
            settings.NINJA_PAGINATION_PER_PAGE, ge=1, le=settings.NINJA_PAGINATION_MAX_LIMIT
        )
        offset: int = Field(0, ge=0, le=MAX_OFFSET)

    def paginate_queryset(
        self, queryset: QuerySet[Any], pagination: Any, request: HttpRequest, **params: Any
    ) -> Any:
        """ninja's page, evaluated once, and recorded."""
        page = super().paginate_queryset(queryset, pagination, request, **params)
        items = page[self.items_attribute]
        record_bulk_read(actor_of(request), items)
        return page


def paginated(view: Callable[..., Any]) -> Callable[..., Any]:
    """ninja's `@paginate` (limit/offset), for views written with postponed annotations.

    The paginating wrapper lives in ninja's module, where names like `VisitFilters` in a string
    annotation cannot be resolved; resolving them against the view's own module first fixes that.
    """
    view.__annotations__ = typing.get_type_hints(view, include_extras=True)
    return paginate(BoundedLimitOffset)(view)  # type: ignore[no-any-return]
