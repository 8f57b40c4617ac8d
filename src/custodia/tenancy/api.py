"""API endpoints (django-ninja): thin doors onto access.py and actions.py."""

from __future__ import annotations

from ninja import Router

router = Router()
