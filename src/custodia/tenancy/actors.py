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
- a background job acts as the membership it works for, and can never step up;
- a periodic platform task acts in one business at a time, with an owner's reach there and no
  person behind it (`system_actor`);
- a calendar app fetching a member's feed acts as that member, reading their own visits, and
  can never step up (`actor_for_calendar_feed`);
- a platform operator's browser session acts for no business at all, with the session's proof
  of recent authentication (`operator_actor_for_session`, docs/operators.md).
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib import messages
from django.core.management.base import CommandError
from django.http import HttpRequest

from custodia.accounts.access import TOKEN_PREFIX, TOKEN_PURPOSE, calendar_feed_by_secret
from custodia.accounts.digests import candidate_digests, is_wellformed_prefix
from custodia.accounts.models import ApiToken, CalendarFeed, User
from custodia.accounts.stepup import ServerConsole, SessionAuthentication
from custodia.core.actor import Actor, acting_as, activate, current_actor
from custodia.core.dbcontext import activate_member, activate_token, set_db_context
from custodia.core.permissions import Permission, Role
from custodia.platform.access import is_active_operator
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


def session_membership(
    request: HttpRequest, user: User, *, durable: bool = True
) -> Membership | None:
    """The membership the session acts for, with the transaction's context set to it (to the
    user alone without one) in one round trip. When the business it named is no longer the
    user's, the session forgets it and says so, rather than acting for another of theirs: a
    form opened for the old business must not submit into a different one."""
    session = request.session
    named = session.get(ACTIVE_BUSINESS_SESSION_KEY)
    if not named and session.get(CHOOSE_BUSINESS_SESSION_KEY):
        set_db_context(user_id=user.pk, durable=durable)
        return None
    try:
        business_id = uuid.UUID(str(named)) if named else None
    except ValueError:
        set_db_context(user_id=user.pk, durable=durable)
        grant = None
    else:
        grant = activate_member(user.pk, business_id, durable=durable)
    if grant is None:
        if named:
            forget_business(session)
            messages.warning(request, BUSINESS_GONE, fail_silently=True)
        return None
    return access.granted_membership(grant)


def actor_for_session(request: HttpRequest, *, durable: bool = True) -> Actor | None:
    """The signed-in person acting for the business their session chose, if any, with the
    database already filtering for them (`acting_as(actor, context_set=True)` adopts it).

    Runs inside the request's transaction; without a membership it leaves the person's own
    context (no business) behind: what a member acting for no business, or a person without one,
    may see.
    """
    user = request.user
    membership = session_membership(request, user, durable=durable)  # type: ignore[arg-type]
    if membership is None:
        return None
    return Actor(user, membership, authentication=SessionAuthentication(request))


# --- An API token ----------------------------------------------------------------------------


def actor_for_token(presented: str, *, acting: ExitStack, durable: bool = True) -> Actor | None:
    """The actor behind `cst_<prefix>_<secret>`, acting from here on in `acting`'s scope; None
    if malformed, unknown, expired or revoked.

    `durable=False` for a GET or HEAD, as for a session (web/middleware.py, docs/audit.md).

    Runs inside the request's transaction, and sets its context: in one round trip, the database
    checks the secret's digests against the token found by its prefix, the token's expiry and
    revocation, its membership, login and business, sets that membership's context (an empty
    one for anything else), keeps the last use to the minute, and returns what the actor is made
    of (core/dbcontext.py: activate_token). The actor then acts in `acting`'s scope (the
    request's pipeline holds it open until the request ends) without setting the context again.
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
    membership = access.granted_membership(grant)
    membership.user = access.from_columns(User, grant.user)
    known = Permission._value2member_map_
    scopes = frozenset(Permission(scope) for scope in grant.token["scopes"] if scope in known)
    actor = Actor(membership.user, membership, scopes)
    acting.enter_context(acting_as(actor, durable=durable, context_set=True))
    if not grant.token["digest_current"]:
        # Digested under a fallback secret key: re-digested under the current one at its first
        # use after a rotation, so the fallback can be retired (docs/operations.md).
        ApiToken.objects.filter(pk=grant.token["id"]).update(digest=digests[0])
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


@dataclass(frozen=True)
class JobActor(Actor):
    """A background job (jobs/registry.py) working for the membership that started it.

    A named system actor: what it does is recorded by the starter's unique user id and role,
    each audit row naming the job (`job-<id>` as its request id, the kind as its agent:
    core/requestctx.py, `running_job`), inside that one business's row-level security; like a
    token, it can never step up.
    """

    job_id: uuid.UUID | None = None
    kind: str = ""

    @property
    def name(self) -> str:
        """How logs and the audit trail name it: `job-<id>`."""
        return f"job-{self.job_id.hex}" if self.job_id is not None else "job"


def job_actor(membership: Membership, *, job_id: uuid.UUID, kind: str) -> JobActor:
    """The job `job_id` of `kind`, working for this membership (its starter)."""
    return JobActor(membership.user, membership, job_id=job_id, kind=kind)


class NoLogin:
    """The `user` of a system actor: no login stands behind it (its audit rows name none)."""

    pk = None
    is_authenticated = False
    display_name = "Custodia (a scheduled task)"

    def __repr__(self) -> str:
        return "NoLogin()"


NO_LOGIN = NoLogin()


@dataclass(frozen=True)
class SystemActor(Actor):
    """A periodic platform task (jobs/registry.py: for_each_business) working in one business.

    No person stands behind it: it acts with an owner's reach inside that one business's
    row-level security (never beyond it), with no login and no membership, so its audit rows
    carry no user id, the owner role, and `task-<name>` as their request id. It never steps up.
    """

    task: str = ""

    @property
    def name(self) -> str:
        return f"task-{self.task}"


def system_actor(business_id: uuid.UUID, *, task: str) -> SystemActor:
    """The periodic task `task` working inside the business `business_id` (one at a time)."""
    membership = Membership(id=None, tenant_id=business_id, user=None, role=Role.OWNER)
    return SystemActor(NO_LOGIN, membership, task=task)


# --- A wallet app holding a pass ---------------------------------------------------------------


@dataclass(frozen=True)
class PassHolderActor(Actor):
    """A wallet app's request for the one pass whose token it presented (wallet/webservice.py).

    No session and no login stand behind it: it acts as that pass's client (the client role's
    reach, their own rows only) inside that one business's row-level security, found by the
    token's digest, never beyond it. Its audit rows carry no user id, the client role and the
    client's id. It never steps up.
    """

    @property
    def name(self) -> str:
        return "wallet-device"


def pass_holder_actor(business_id: uuid.UUID, client_id: uuid.UUID) -> PassHolderActor:
    """The holder of a wallet pass of the client `client_id` in the business `business_id`."""
    membership = Membership(
        id=None, tenant_id=business_id, user=None, role=Role.CLIENT, client_id=client_id
    )
    return PassHolderActor(NO_LOGIN, membership)


# --- A calendar app fetching a member's feed -----------------------------------------------------


@dataclass(frozen=True)
class FeedReaderActor(Actor):
    """A calendar app's request for a member's feed (`/calendar/<prefix>/<secret>.ics`).

    No session stands behind it: the feed's secret proves it, and it acts as the feed's member
    (their login, membership and role) inside that one business's row-level security, set by
    the same function that a session's context goes through (`activate_member`: an active
    membership of an active login). It reads that member's own visits and nothing else, its
    audit rows name the member's user id, and it never steps up.
    """

    feed_prefix: str = ""

    @property
    def name(self) -> str:
        """What names it, like the other system actors: `calendar-feed-<prefix>` (public)."""
        return f"calendar-feed-{self.feed_prefix}"


def actor_for_calendar_feed(
    prefix: str, secret: str, *, acting: ExitStack
) -> FeedReaderActor | None:
    """The member behind a feed's address, acting from here on in `acting`'s scope; None when
    the address is not a live feed's, or its membership or login is no longer active (one
    answer for every case). Inside the request's transaction; a GET, so not durable.

    A browser signed in to Custodia may open the address too: when no feed is found, the
    context of the actor already acting (the session's) is put back, so what the request
    records next (its refusal) is recorded as that actor, inside their business.
    """
    found = calendar_feed_by_secret(prefix, secret)
    feed = found.feed if found is not None else None
    grant = None
    if feed is not None:
        grant = activate_member(feed.user_id, feed.tenant_id, durable=False)
    if feed is None or grant is None or grant.membership["id"] != feed.membership_id:
        before = current_actor()
        if before is not None:
            activate(before, durable=False)
        else:
            set_db_context(durable=False)
        return None
    membership = access.granted_membership(grant)
    user = User.objects.get(pk=feed.user_id)
    membership.user = user
    actor = FeedReaderActor(user, membership, feed_prefix=feed.prefix)
    acting.enter_context(acting_as(actor, durable=False, context_set=True))
    if found is not None and found.current_digest is not None:
        # Digested under a fallback secret key: re-digested under the current one at its first
        # use after a rotation, like an API token, so the fallback can be retired.
        CalendarFeed.objects.filter(pk=feed.pk).update(digest=found.current_digest)
    return actor


# --- A platform operator -------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorActor(Actor):
    """A platform operator signed in to the console (web/platform/), acting for no business.

    Its membership is an unsaved one with no business, no client and no role: `acting_as` sets
    the operator's login alone as the database context, in which every business's table reads
    as empty (row-level security names no tenant), so no customer row can reach it. It holds no
    business permission (`can` is always False), never gets an API token, and its proof of
    recent authentication is the session's, which every console action asks for (step-up).
    A support grant, when one exists, will be another actor built here, not a widening of this.
    """

    def can(self, permission: Permission) -> bool:
        """No business permission, whatever it is."""
        return False

    @property
    def name(self) -> str:
        """How logs name it: `operator-<user id>`."""
        return f"operator-{self.user.pk}"


def operator_actor_for_session(request: HttpRequest) -> OperatorActor | None:
    """The signed-in active operator behind this session, or None (anyone else).

    Inside the request's transaction, in the login's own context (TenantMiddleware sets it for
    a login without a membership, as an operator's is), which reads their own operator row.
    """
    user = request.user
    if not user.is_authenticated or not is_active_operator(user):
        return None
    no_business = Membership(id=None, tenant_id=None, user=user, role="")  # type: ignore[misc]
    return OperatorActor(user, no_business, authentication=SessionAuthentication(request))
