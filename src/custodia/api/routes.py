"""Mount each app's router on the one API."""

from __future__ import annotations

from django.http import Http404, HttpRequest
from ninja import Router

from custodia.api.app import api
from custodia.api.audit.router import router as audit_router
from custodia.api.clients.pets import client_pets_router, pets_router
from custodia.api.clients.router import router as clients_router
from custodia.api.export.router import router as export_router
from custodia.api.jobs.router import router as jobs_router
from custodia.api.payments.router import invoices_router, passes_router
from custodia.api.scheduling.router import services_router, visits_router
from custodia.api.tenancy.router import router as staff_router

api.add_router("/clients", clients_router)
api.add_router("/clients", client_pets_router)
api.add_router("/pets", pets_router)
api.add_router("/staff", staff_router)
api.add_router("/services", services_router)
api.add_router("/visits", visits_router)
api.add_router("/passes", passes_router)
api.add_router("/invoices", invoices_router)
api.add_router("/audit", audit_router)
api.add_router("/exports", export_router)
api.add_router("/jobs", jobs_router)

# Mounted last: URL patterns are tried in order, so this only catches what nothing else did.
fallback_router = Router(auth=None)


@fallback_router.api_operation(
    ["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", include_in_schema=False
)
def no_such_endpoint(request: HttpRequest, rest: str) -> None:
    """Unknown paths under the API answer in JSON like every other error."""
    raise Http404("No such endpoint.")


api.add_router("", fallback_router)
