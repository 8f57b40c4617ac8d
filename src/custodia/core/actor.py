"""Who is acting, and the one way to act: `with acting_as(actor):`.

`acting_as` makes the database filter for the actor (its business, membership, role and client:
core/dbcontext.py) and makes it the current actor, together. Every action (`do_<verb>_<noun>` in
an app's actions.py) calls `require_active(actor)` first, so an action handed one actor while the
database filters for another fails loudly instead of acting across the two.

Actors are built in one module, tenancy/actors.py (a browser session, an API token, the
console, an invitation, a background job); this module knows no app: a person and a membership
are whatever has the few attributes below (accounts.models.User, tenancy.models.Membership).
"""

from __future__ import annotations

import uuid
import zoneinfo
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.core.exceptions import PermissionDenied
from django.db import connections
from django.http import Http404
from django.utils import timezone

from custodia.core.dbcontext import set_db_context, transaction_failed
from custodia.core.permissions import (
    MANAGING_ROLES,
    NEVER_TOKEN_SCOPES,
    Permission,
    Role,
    role_allows,
)


class Authentication(Protocol):
    """What the request proves about how recently its person authenticated (accounts/stepup.py).

    Sensitive actions ask it, inside the action, through `accounts.stepup.require_step_up`.
    """

    def stepped_up_at(self) -> float | None:
        """When the person last proved themself in full (a time.time() value), if ever."""

    def card_activity_at(self) -> float | None:
        """When the last card action of this session was, if any."""

    def note_card_activity(self, at: float) -> None:
        """Record a card action at `at` (the card window slides from it)."""


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user through one membership, optionally narrowed by token scopes.

    `user` is an accounts.models.User and `membership` a tenancy.models.Membership (typed Any:
    core imports no app). `authentication` is the browser session's proof of recent
    authentication (None for an API token or a job, which can never step up).
    """

    user: Any
    membership: Any
    scopes: frozenset[Permission] | None = field(default=None)
    authentication: Authentication | None = field(default=None, compare=False, repr=False)

    @property
    def business(self) -> Any:
        """The membership's business (a tenancy.models.Business)."""
        return self.membership.tenant

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.membership.tenant_id  # type: ignore[no-any-return]

    @property
    def role(self) -> Role:
        return Role(self.membership.role)

    @property
    def is_manager(self) -> bool:
        return self.role in MANAGING_ROLES

    def can(self, permission: Permission) -> bool:
        """The role (with a manager's cards grant) allows it and, for a token, the token's scopes
        include it; card permissions never for a token."""
        if self.scopes is not None and permission in NEVER_TOKEN_SCOPES:
            return False
        if permission in NEVER_TOKEN_SCOPES:
            granted = bool(getattr(self.membership, "cards_granted", False))
        else:
            granted = False
        if not role_allows(self.role, permission, cards_granted=granted):
            return False
        return self.scopes is None or permission in self.scopes

    def require(self, permission: Permission) -> None:
        """Raise PermissionDenied unless `can(permission)`."""
        if not self.can(permission):
            raise PermissionDenied(f"Your role does not allow {permission}.")


class NotTheActiveActor(RuntimeError):
    """An action was handed an actor other than the one the database filters for: a bug."""


_CURRENT: ContextVar[Actor | None] = ContextVar("custodia_actor", default=None)


def current_actor() -> Actor | None:
    """The actor of the innermost `acting_as` block on this thread, if any."""
    return _CURRENT.get()


def activate(actor: Actor, *, durable: bool = True, using: str = "default") -> None:
    """The database half of `acting_as`: the actor's context until the transaction ends.

    Use `acting_as`; this is for it, and for an actor factory that must write as the actor
    before handing it on (the token's last use).
    """
    set_db_context(
        tenant_id=actor.membership.tenant_id,
        user_id=actor.user.pk,
        membership_id=actor.membership.pk,
        client_id=actor.membership.client_id,
        role=actor.membership.role,
        durable=durable,
        using=using,
    )


@contextmanager
def acting_as(
    actor: Actor, *, durable: bool = True, using: str = "default", context_set: bool = False
) -> Iterator[Actor]:
    """Inside the block the database filters for `actor` and `actor` is the current actor.

    Needs a transaction (the database context is the transaction's). On leaving, the actor
    before it, if any, is current again, in the database too; otherwise the database keeps this
    actor's context until the transaction ends, as the request's transaction does right after.
    `durable=False`: the commit need not wait for its WAL flush (reads that write only their
    audit events, docs/audit.md). `context_set=True`: the database already filters for exactly
    this actor, set in the request's first round trip by the function that also found it
    (core/dbcontext.py: activate_token, activate_member), so it is adopted, not set again.
    """
    previous = _CURRENT.get()
    if not context_set:
        activate(actor, durable=durable, using=using)
    token = _CURRENT.set(actor)
    try:
        with _business_zone(actor):
            yield actor
    finally:
        _CURRENT.reset(token)
        if (
            previous is not None
            and previous is not actor
            and connections[using].in_atomic_block
            and not transaction_failed(using=using)
        ):
            activate(previous, using=using)


def _business_zone(actor: Actor) -> AbstractContextManager[None]:
    """Django's current time zone becomes the business's (tenancy/zones.py), when the actor
    came with its business loaded (a session's or token's actor does); an actor made without it
    (a background job's) leaves the zone alone, and its task asks `zone_for` itself."""
    business = actor.membership._state.fields_cache.get("tenant")
    name = getattr(business, "time_zone", "")
    return timezone.override(zoneinfo.ZoneInfo(name)) if name else nullcontext()


def require_active(actor: Actor) -> None:
    """Raise NotTheActiveActor unless `actor` is the one `acting_as` made current.

    Every action calls it first: the rows it may touch are the database's context's, so the
    actor it checks permissions for and records in the audit trail must be that same one.
    """
    active = _CURRENT.get()
    if active is None:
        raise NotTheActiveActor(
            f"An action for {_describe(actor)} ran with no active actor: wrap it in acting_as."
        )
    if active != actor:
        raise NotTheActiveActor(
            f"An action was handed {_describe(actor)} while the database acts for"
            f" {_describe(active)}."
        )


def _describe(actor: Actor) -> str:
    # Ids only: messages end up in logs.
    return f"membership {actor.membership.pk} (user {actor.user.pk})"


def ensure_in_business(actor: Actor, *records: object) -> None:
    """Records handed to an action must be the actor's business's; anything else is not found."""
    for record in records:
        if record is not None and getattr(record, "tenant_id", None) != actor.tenant_id:
            raise Http404("No such record.")
