"""Reads for accounts: API tokens, and the actor a bearer token stands for."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from custodia.accounts.digests import candidate_digests, is_wellformed_prefix
from custodia.accounts.models import ApiToken, SecurityEvent, User
from custodia.tenancy.access import from_columns, granted_membership, parse_id
from custodia.tenancy.context import Actor, activate_token
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


def actor_for_token(presented: str, *, durable: bool = True) -> Actor | None:
    """The actor behind `cst_<prefix>_<secret>`; None if malformed, unknown, expired or revoked.

    `durable=False` for a GET or HEAD, as for a session (tenancy/middleware.py, docs/audit.md).

    Runs inside the request's transaction, and sets its context: in one round trip, the database
    checks the secret's digests against the token found by its prefix, the token's expiry and
    revocation, its membership, login and business, sets that membership's context (an empty
    one for anything else), keeps the last use to the minute, and returns what the actor is made
    of (tenancy/context.py: activate_token).
    """
    parts = presented.split("_", 2)
    if len(presented) > 200 or len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    _, prefix, secret = parts
    if not is_wellformed_prefix(prefix):
        return None
    digests = candidate_digests(TOKEN_PURPOSE, secret)
    grant = activate_token(prefix, digests, durable=durable)
    if grant is None:
        return None
    membership = granted_membership(grant)
    membership.user = from_columns(User, grant.user)
    known = Permission._value2member_map_
    scopes = frozenset(Permission(scope) for scope in grant.token["scopes"] if scope in known)
    if not grant.token["digest_current"]:
        # Digested under a fallback secret key: re-digested under the current one at its first
        # use after a rotation, so the fallback can be retired (docs/operations.md).
        ApiToken.objects.filter(pk=grant.token["id"]).update(digest=digests[0])
    return Actor(membership.user, membership, scopes)


def recent_security_events(user: Any, limit: int = 20) -> list[SecurityEvent]:
    """The person's own latest security events, newest first (for their security panel)."""
    return list(SecurityEvent.objects.filter(user_id=user.pk).order_by("-at")[:limit])
