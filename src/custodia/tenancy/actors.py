"""Every actor is built here: from a browser session, an API token, the console, an invitation
(or the signup that makes a business), and a background job.

An actor is a membership acting through one door, with what that door proves
(`core.actor.Actor`); acting is `with acting_as(actor):` (core/actor.py). Nothing else builds
one, so what each door may claim is decided in this module alone:
- a browser session acts for the business it chose (`act_for`), with the session's proof of
  recent authentication (step-up);
- an API token acts for its membership, narrowed to its scopes, and can never step up;
- the console (`custodia` commands) acts as the member the operator names, with nothing further
  to prove (whoever runs commands there holds the database and the keys);
- an invitation, once accepted, and a business just made act as their new membership;
- a background job acts as the membership it works for, and can never step up.
"""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from typing import TYPE_CHECKING

from django.contrib import messages
from django.core.management.base import CommandError
from django.http import HttpRequest
from django.utils import timezone

from custodia.accounts.access import TOKEN_PREFIX, TOKEN_PURPOSE
from custodia.accounts.digests import current_digest_if_stale, is_wellformed_prefix, secret_matches
from custodia.accounts.models import ApiToken, User
from custodia.accounts.stepup import ServerConsole, SessionAuthentication
from custodia.core.actor import Actor, acting_as
from custodia.core.dbcontext import set_db_context
from custodia.core.permissions import Permission
from custodia.tenancy import access
from custodia.tenancy.models import Membership

if TYPE_CHECKING:
    from django.contrib.sessions.backends.base import SessionBase

# --- A browser session -----------------------------------------------------------------------

ACTIVE_BUSINESS_SESSION_KEY = "custodia.business_id"
# Set when the business a session acted for went away (deleted, or the membership ended): the
# session acts for no business until the person chooses one, never silently for another.
CHOOSE_BUSINESS_SESSION_KEY = "custodia.choose_business"
BUSINESS_GONE = (
    "The business you were working in is no longer available to you. Choose a business to continue."
)


def act_for(session: SessionBase, business_id: object) -> None:
    """The session acts for this business from now on (a switch, an accepted invitation)."""
    session[ACTIVE_BUSINESS_SESSION_KEY] = str(business_id)
    session.pop(CHOOSE_BUSINESS_SESSION_KEY, None)


def forget_business(session: SessionBase) -> None:
    """The session acts for no business until the person chooses one."""
    session.pop(ACTIVE_BUSINESS_SESSION_KEY, None)
    session[CHOOSE_BUSINESS_SESSION_KEY] = True


def session_membership(request: HttpRequest, user: User) -> Membership | None:
    """The membership the session acts for. When the business it named is no longer the
    user's, the session forgets it and says so, rather than acting for another of theirs: a
    form opened for the old business must not submit into a different one."""
    session = request.session
    named = session.get(ACTIVE_BUSINESS_SESSION_KEY)
    if not named and session.get(CHOOSE_BUSINESS_SESSION_KEY):
        return None
    membership = access.active_membership(user, named)
    if membership is None and named:
        forget_business(session)
        messages.warning(request, BUSINESS_GONE, fail_silently=True)
    return membership


def actor_for_session(request: HttpRequest, *, durable: bool = True) -> Actor | None:
    """The signed-in person acting for the business their session chose, if any.

    Runs inside the request's transaction and leaves the person's own context (no business)
    behind: what a member acting for no business, or a person without one, may see.
    """
    user = request.user
    set_db_context(user_id=user.pk, durable=durable)
    membership = session_membership(request, user)  # type: ignore[arg-type]
    if membership is None:
        return None
    return Actor(user, membership, authentication=SessionAuthentication(request))


# --- An API token ----------------------------------------------------------------------------

LAST_USE_RESOLUTION = dt.timedelta(minutes=1)


def actor_for_token(
    presented: str, *, acting: ExitStack, durable: bool = True
) -> Actor | None:
    """The actor behind `cst_<prefix>_<secret>`, acting from here on in `acting`'s scope; None
    if malformed, unknown, expired or revoked.

    `durable=False` for a GET or HEAD, as for a session (web/middleware.py, docs/audit.md).

    Runs inside the request's transaction. The token row is found by its public prefix alone (the
    only RLS context before authentication); once the secret matches, the membership is read as
    the token's user, and the last-use time is written as the actor: entered here, so that the
    context is set once (the request's pipeline holds `acting` open until the request ends).
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
    acting.enter_context(acting_as(actor, durable=durable))
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


# --- The console -----------------------------------------------------------------------------


def find_user(email: str) -> User:
    """The login with this email, or a CommandError."""
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None or not user.is_active:
        raise CommandError(f"No active login has the email {email.strip()!r}.")
    return user


def console_actor(user: User, membership: Membership) -> Actor:
    """The member an operator names at the server's console (accounts/stepup.py)."""
    return Actor(user, membership, authentication=ServerConsole())


def console_actors(user: User, business: str | None) -> list[Actor]:
    """The user's active memberships as console actors, narrowed to one business slug if given.

    Must run inside a transaction: it sets the RLS user context to find the memberships.
    """
    set_db_context(user_id=user.pk)
    memberships = list(access.memberships_of(user))
    if business is not None:
        memberships = [m for m in memberships if m.tenant.slug == business]
        if not memberships:
            raise CommandError(f"{user.email} is not an active member of {business!r}.")
    if not memberships:
        raise CommandError(f"{user.email} is not an active member of any business.")
    return [console_actor(user, membership) for membership in memberships]


# --- An invitation, a new business, a background job -----------------------------------------


def new_member_actor(user: User, membership: Membership) -> Actor:
    """The person who just joined (an accepted invitation) or made a business (its owner).

    No proof of recent authentication travels with it: what they do next as this member goes
    through their session like anything else.
    """
    return Actor(user, membership)


def job_actor(membership: Membership) -> Actor:
    """A background job working for this membership; like a token, it can never step up."""
    return Actor(membership.user, membership)
