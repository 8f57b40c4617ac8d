"""Reads for accounts: API tokens, and the actor a bearer token stands for."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from custodia.accounts.digests import (
    current_digest_if_stale,
    is_wellformed_prefix,
    secret_matches,
)
from custodia.accounts.models import ApiToken, SecurityEvent, User
from custodia.tenancy.access import parse_id
from custodia.tenancy.context import Actor, activate, set_db_context
from custodia.tenancy.models import Membership
from custodia.tenancy.permissions import Permission

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


LAST_USE_RESOLUTION = dt.timedelta(minutes=1)


def actor_for_token(presented: str, *, durable: bool = True) -> Actor | None:
    """The actor behind `cst_<prefix>_<secret>`; None if malformed, unknown, expired or revoked.

    `durable=False` for a GET or HEAD, as for a session (tenancy/middleware.py, docs/audit.md).

    Runs inside the request's transaction. The token row is found by its public prefix alone (the
    only RLS context before authentication); once the secret matches, the membership is read as
    the token's user, and the last-use time is written as the fully activated actor.
    """
    parts = presented.split("_", 2)
    if len(presented) > 200 or len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    _, prefix, secret = parts
    if not is_wellformed_prefix(prefix):
        return None
    set_db_context(lookup=prefix)
    token = ApiToken.objects.filter(prefix=prefix).first()
    if token is None or not secret_matches(TOKEN_PURPOSE, secret, token.digest):
        return None
    now = timezone.now()
    if token.revoked_at is not None or token.expires_at <= now:
        return None
    set_db_context(user_id=token.user_id)
    membership = (
        Membership.objects.select_related("user", "tenant")
        .filter(pk=token.membership_id, user_id=token.user_id, tenant_id=token.tenant_id)
        .first()
    )
    if membership is None or not (membership.user.is_active and membership.is_active):
        return None
    scopes = frozenset(
        Permission(scope) for scope in token.scopes if scope in Permission._value2member_map_
    )
    actor = Actor(membership.user, membership, scopes)
    activate(actor, durable=durable)
    # A write per request would make every read commit a WAL flush: the last use is kept to
    # the minute (the security panel shows it so).
    # A token digested under a fallback secret key is re-digested under the current one at its
    # first use after a rotation, so the fallback can be retired (docs/operations.md).
    fresh_digest = current_digest_if_stale(TOKEN_PURPOSE, secret, token.digest)
    if fresh_digest is not None:
        ApiToken.objects.filter(pk=token.pk).update(digest=fresh_digest, last_used_at=now)
    elif token.last_used_at is None or now - token.last_used_at >= LAST_USE_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return actor


def recent_security_events(user: Any, limit: int = 20) -> list[SecurityEvent]:
    """The person's own latest security events, newest first (for their security panel)."""
    return list(SecurityEvent.objects.filter(user_id=user.pk).order_by("-at")[:limit])
