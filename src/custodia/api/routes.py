"""Mount each app's router on the one API."""

from __future__ import annotations

from custodia.api.core import api
from custodia.clients.api import router as clients_router
from custodia.scheduling.api import services_router, visits_router
from custodia.tenancy.api import router as staff_router

api.add_router("/clients", clients_router)
api.add_router("/staff", staff_router)
api.add_router("/services", services_router)
api.add_router("/visits", visits_router)
