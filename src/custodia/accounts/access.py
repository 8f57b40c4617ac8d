"""Reads for accounts: API tokens, and the actor a bearer token stands for."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from custodia.accounts.digests import secret_matches
from custodia.accounts.models import ApiToken
from custodia.tenancy.context import Actor, set_db_context
from custodia.tenancy.permissions import Permission

TOKEN_PURPOSE = "api-token"
TOKEN_PREFIX = "cst"


def list_tokens(actor: Actor) -> QuerySet[ApiToken]:
    """The actor's own tokens in the current business."""
    return ApiToken.objects.filter(tenant_id=actor.tenant_id, user=actor.user).order_by("-created_at")


def actor_for_token(presented: str) -> Actor | None:
    """The actor behind `cst_<prefix>_<secret>`, or None for anything unknown, expired or revoked.

    Must run inside the request's transaction: it narrows RLS to the token's prefix to find it.
    """
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    _, prefix, secret = parts
    set_db_context(lookup=prefix)
    token = (
        ApiToken.objects.select_related("user", "membership", "membership__tenant")
        .filter(prefix=prefix)
        .first()
    )
    if token is None or not secret_matches(TOKEN_PURPOSE, secret, token.digest):
        return None
    now = timezone.now()
    if token.revoked_at is not None or token.expires_at <= now:
        return None
    membership = token.membership
    if not (token.user.is_active and membership.is_active):
        return None
    scopes = frozenset(Permission(scope) for scope in token.scopes if scope in Permission._value2member_map_)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return Actor(token.user, membership, scopes)
