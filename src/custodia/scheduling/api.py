"""API endpoints (django-ninja): thin doors onto access.py and actions.py."""

from __future__ import annotations

from ninja import Router

services_router = Router(tags=["services"])
visits_router = Router(tags=["visits"])
