"""Benchmark baseline: the client queries with no authentication, token, audit or decryption.

Not part of Custodia: bench/urls.py (the benchmark servers' URLconf, bench/settings.py) mounts it
only when CUSTODIA_BENCH_BASELINE=1, and it refuses to load in production. It serves
`bench/`'s "cost of protection" scenario: the same ORM query and JSON shape as the API, minus
everything that protects it. The app role still needs a tenant to see rows under forced RLS, so
one set_config names the tenant; that is the only protection-related work left in it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import path

from custodia.api.clients.schemas import ClientOut
from custodia.clients.models import Client
from custodia.core.dbcontext import set_db_context

if settings.PRODUCTION:
    raise ImproperlyConfigured("CUSTODIA_BENCH_BASELINE cannot be on when CUSTODIA_ENV=production.")

PAGE = 50


def _tenant(tenant_id: str) -> uuid.UUID:
    try:
        tenant = uuid.UUID(tenant_id)
    except ValueError:
        raise Http404("No such business.") from None
    set_db_context(tenant_id=tenant, role="owner")
    return tenant


def bare_client_list(request: HttpRequest, tenant_id: str) -> JsonResponse:
    """The list API's query (count and first page), without authentication."""
    clients = Client.objects.filter(tenant_id=_tenant(tenant_id)).order_by("name_search", "id")
    items = [ClientOut.from_orm(client).model_dump(mode="json") for client in clients[:PAGE]]
    return JsonResponse({"items": items, "count": clients.count()})


def bare_client_detail(request: HttpRequest, tenant_id: str, client_id: str) -> JsonResponse:
    """The detail API's query, without authentication."""
    tenant = _tenant(tenant_id)
    try:
        client = Client.objects.get(tenant_id=tenant, id=uuid.UUID(client_id))
    except (ValueError, Client.DoesNotExist):
        raise Http404("No such client.") from None
    return JsonResponse(ClientOut.from_orm(client).model_dump(mode="json") | {"home_access": None})


urlpatterns = [
    path("clients/<str:tenant_id>/", bare_client_list),
    path("clients/<str:tenant_id>/<str:client_id>/", bare_client_detail),
]
