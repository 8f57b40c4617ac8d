"""Reads for accounts: API tokens, and a person's security events."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from custodia.accounts.models import ApiToken, SecurityEvent, User
from custodia.core.actor import Actor
from custodia.tenancy.access import parse_id

# Labels, not secrets: the HMAC purpose and the visible start of every token.
TOKEN_PURPOSE = "api-token"  # noqa: S105
TOKEN_PREFIX = "cst"  # noqa: S105


def list_tokens(actor: Actor) -> QuerySet[ApiToken]:
    """The actor's own tokens in the current business."""
    return ApiToken.objects.filter(tenant_id=actor.tenant_id, user=actor.user).order_by(
        "-created_at"
    )


def access_token_by_id(actor: Actor, token_id: object) -> ApiToken:
    """One of the actor's own tokens in the current business, or 404."""
    try:
        return list_tokens(actor).get(id=parse_id(token_id))
    except ApiToken.DoesNotExist:
        raise Http404("No such token.") from None


def email_has_account(email: str) -> bool:
    """Whether a login exists for this email (only for someone holding an invitation link to it)."""
    return User.objects.filter(email__iexact=email.strip()).exists()


def recent_security_events(user: Any, limit: int = 20) -> list[SecurityEvent]:
    """The person's own latest security events, newest first (for their security panel)."""
    return list(SecurityEvent.objects.filter(user_id=user.pk).order_by("-at")[:limit])
