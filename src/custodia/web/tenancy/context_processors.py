from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from custodia.core.permissions import Permission
from custodia.tenancy import access


def tenancy(request: HttpRequest) -> dict[str, Any]:
    """The actor, what the navigation offers them, and the business switcher's choices."""
    actor = getattr(request, "actor", None)
    user = getattr(request, "user", None)
    memberships = []
    if user is not None and user.is_authenticated:
        memberships = list(access.memberships_of(user))  # type: ignore[arg-type]
    return {
        "actor": actor,
        "can_read_audit": actor is not None and actor.can(Permission.AUDIT_READ),
        "switchable_memberships": memberships if len(memberships) > 1 else [],
    }
