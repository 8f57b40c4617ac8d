from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from custodia.tenancy import access


def tenancy(request: HttpRequest) -> dict[str, Any]:
    """The actor and, for people in several businesses, the switcher's choices."""
    actor = getattr(request, "actor", None)
    user = getattr(request, "user", None)
    memberships = []
    if user is not None and user.is_authenticated:
        memberships = list(access.memberships_of(user))  # type: ignore[arg-type]
    return {"actor": actor, "switchable_memberships": memberships if len(memberships) > 1 else []}
