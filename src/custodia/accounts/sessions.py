"""Browser sessions: idle and absolute expiry, new ids on privilege changes, ending them.

Lifetimes (README, "Sessions"):
- "Remember me" keeps the session cookie across browser restarts for at most 14 days
  (`SESSION_COOKIE_AGE`); without it the cookie ends with the browser and the session ends at
  the latest `CUSTODIA_SESSION_ABSOLUTE_HOURS` (default 12) after login.
- Every session, remembered or not, ends after the idle minutes of the business it acts for (a
  business policy that a checkbox on the login form must not switch off).

The list of a person's sessions is accounts/sessionlist.py; what logins and credential changes
do to sessions is wired in accounts/receivers.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from allauth.core import context as allauth_context
from allauth.usersessions.adapter import DefaultUserSessionsAdapter
from allauth.usersessions.adapter import get_adapter as get_usersessions_adapter
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from custodia.accounts.sessionlist import listed_key, own_session, track
from custodia.accounts.sessionstore import SessionStore, stored_key
from custodia.core.audit import AuditAction, record
from custodia.core.dbcontext import set_db_context
from custodia.tenancy.actors import ACTIVE_BUSINESS_SESSION_KEY
from custodia.tenancy.models import Membership

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.sessions.backends.base import SessionBase

logger = logging.getLogger(__name__)

STARTED_KEY = "custodia.session.started"
SEEN_KEY = "custodia.session.seen"
DEFAULT_IDLE_MINUTES = 30
# No business allows less, so a shorter pause needs no policy lookup.
MIN_IDLE_MINUTES = 5
# Last activity is written to the session (and its UserSession row) at most this often.
ACTIVITY_RESOLUTION = dt.timedelta(minutes=1)
TIMED_OUT = "Your session timed out after a period of inactivity. Log in again to continue."
TOO_OLD = "Your session reached its maximum length. Log in again to continue."
ENDED = "Your session has ended. Log in again to continue."


def clock() -> dt.datetime:
    """The one clock of session lifetimes (tests move it by patching this function)."""
    return timezone.now()


# --- Lifetimes --------------------------------------------------------------------------------


def absolute_lifetime(session: SessionBase) -> dt.timedelta:
    """14 days for a remembered session, `SESSION_ABSOLUTE_HOURS` for a browser-length one."""
    if session.get_expire_at_browser_close():
        return dt.timedelta(hours=settings.SESSION_ABSOLUTE_HOURS)
    return dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)


def idle_minutes(user: AbstractBaseUser, business_id: object) -> int:
    """The idle limit of the business the session acts for; else the strictest of the user's
    businesses; 30 without any."""
    with transaction.atomic():
        set_db_context(user_id=user.pk)
        limits = dict(
            Membership.objects.filter(user_id=user.pk, is_active=True).values_list(
                "tenant_id", "tenant__session_idle_minutes"
            )
        )
    try:
        chosen = uuid.UUID(str(business_id)) if business_id else None
    except ValueError:
        chosen = None
    if chosen in limits:
        return int(limits[chosen])
    return min(limits.values(), default=DEFAULT_IDLE_MINUTES)


def _stamp(session: SessionBase, key: str, when: dt.datetime) -> None:
    session[key] = when.timestamp()


def _read_stamp(session: SessionBase, key: str) -> dt.datetime | None:
    value = session.get(key)
    if not isinstance(value, int | float):
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.UTC)


def expiry_reason(request: HttpRequest, now: dt.datetime) -> str | None:
    """Why the request's authenticated session has ended, or None while it is live."""
    session = request.session
    started = _read_stamp(session, STARTED_KEY)
    seen = _read_stamp(session, SEEN_KEY)
    if started is not None and now - started > absolute_lifetime(session):
        return TOO_OLD
    if seen is None:
        return None
    idle = now - seen
    if idle > dt.timedelta(minutes=MIN_IDLE_MINUTES):
        limit = idle_minutes(request.user, session.get(ACTIVE_BUSINESS_SESSION_KEY))  # type: ignore[arg-type]
        if idle > dt.timedelta(minutes=limit):
            return TIMED_OUT
    return None


def start_session(request: HttpRequest) -> None:
    """Stamp a freshly authenticated session: its lifetime counts from now (its first request
    records the activity and lists it)."""
    _stamp(request.session, STARTED_KEY, clock())
    request.session.pop(SEEN_KEY, None)


class SessionLifetimeMiddleware:
    """Ends idle and over-age sessions on their next request; records activity once a minute.

    Sits where allauth's UserSessionsMiddleware stood (after Session-, Authentication- and
    MessageMiddleware, before TenantMiddleware): it needs the user and messages, and a session it
    ends must not be given a tenant context. It replaces that middleware, doing the same tracking
    call at most once per `ACTIVITY_RESOLUTION`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            self._note_ended_cookie(request)
            return self.get_response(request)
        now = clock()
        reason = expiry_reason(request, now)
        if reason is not None:
            return self._end(request, reason)
        session = request.session
        if _read_stamp(session, STARTED_KEY) is None:
            _stamp(session, STARTED_KEY, now)  # a session from before these stamps
        seen = _read_stamp(session, SEEN_KEY)
        if seen is None or now - seen >= ACTIVITY_RESOLUTION:
            _stamp(session, SEEN_KEY, now)
            track(request)
        return self.get_response(request)

    def _end(self, request: HttpRequest, reason: str) -> HttpResponse:
        request.session_end_reason = "idle" if reason == TIMED_OUT else "age"  # type: ignore[attr-defined]
        _log_out_here(request)
        logger.info(
            "session ended on its next request: %s", "idle" if reason == TIMED_OUT else "age"
        )
        if request.path.startswith("/api/"):
            # Answered by the API's own authentication: 401 JSON, or the bearer token's answer.
            return self.get_response(request)
        messages.info(request, reason)
        return redirect_to_login(request.path)

    @staticmethod
    def _note_ended_cookie(request: HttpRequest) -> None:
        """A session cookie whose session is gone (ended elsewhere, expired): say so once."""
        if not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
            return
        session = getattr(request, "session", None)
        if session is None or session.session_key is not None or request.path.startswith("/api/"):
            return
        messages.info(request, ENDED)


# --- New session ids --------------------------------------------------------------------------


def rotate_session(request: HttpRequest) -> None:
    """A new session id for the same session (privilege change); its list entry follows it."""
    old = listed_key(request)
    request.session.cycle_key()
    new = listed_key(request)
    if old and new and old != new:
        UserSession.objects.filter(session_key=old).update(session_key=new)


def current_session_key(user: AbstractBaseUser) -> str | None:
    """The key of the session making the current request, when it is `user`'s."""
    request: HttpRequest | None = allauth_context.request
    if request is None or getattr(request, "user", None) is None:
        return None
    if not request.user.is_authenticated or request.user.pk != user.pk:
        return None
    return request.session.session_key


# --- Ending sessions --------------------------------------------------------------------------


def _acts_for(listed: str, business_id: uuid.UUID) -> bool:
    """Whether a listed session acts (or may act, having chosen none) for the business."""
    chosen = SessionStore.data_of_stored(listed).get(ACTIVE_BUSINESS_SESSION_KEY)
    return not chosen or str(chosen) == str(business_id)


def end_sessions(
    user: AbstractBaseUser, *, keep: str | None = None, business_id: uuid.UUID | None = None
) -> int:
    """End `user`'s sessions server-side, all but the one whose key is `keep`; with
    `business_id`, only those acting for that business. Returns how many ended."""
    ended = 0
    kept = stored_key(keep) if keep else None
    with transaction.atomic():
        for user_session in UserSession.objects.filter(user_id=user.pk).select_for_update():
            if user_session.session_key == kept:
                continue
            if business_id is not None and not _acts_for(user_session.session_key, business_id):
                continue
            get_usersessions_adapter().end_sessions([user_session])
            ended += 1
    if ended:
        logger.info("sessions ended server-side user=%s count=%d", user.pk, ended)
        record_session_end(user, "ended elsewhere", count=ended)
    return ended


class UserSessionsAdapter(DefaultUserSessionsAdapter):
    """Ends listed sessions by their stored key (allauth's `UserSession.end()` would take the
    row's key for a cookie value, hash it again and end nothing)."""

    def end_sessions(self, sessions: Any) -> None:
        for session in sessions:
            SessionStore.delete_stored(session.session_key)
            session.delete()


def end_other_sessions(request: HttpRequest) -> int:
    """End every session of the request's user except this one."""
    return end_sessions(request.user, keep=request.session.session_key)  # type: ignore[arg-type]


def end_session_by_id(request: HttpRequest, session_id: int) -> bool:
    """End one of the request user's sessions (another user's id is simply not found)."""
    user_session = own_session(request, session_id)
    if user_session is None:
        return False
    if user_session.session_key == listed_key(request):
        request.session_end_reason = "revoked"  # type: ignore[attr-defined]
        _log_out_here(request)
    else:
        get_usersessions_adapter().end_sessions([user_session])
        record_session_end(request.user, "revoked")
    logger.info("session ended from the security panel user=%s", request.user.pk)
    return True


def end_all_sessions(request: HttpRequest) -> int:
    """End every session of the request's user, this one last."""
    user = request.user
    count = end_sessions(user, keep=request.session.session_key)  # type: ignore[arg-type]
    request.session_end_reason = "revoked"  # type: ignore[attr-defined]
    _log_out_here(request)
    return count + 1


def record_session_end(user: Any, how: str, *, count: int = 1) -> None:
    """An `auth.session_ended` event: logout, idle, age, revoked, or ended elsewhere."""
    record(
        AuditAction.SESSION_ENDED,
        user=user,
        target_type="user",
        target_id=user.pk,
        detail={"how": how, "count": count},
    )


def _log_out_here(request: HttpRequest) -> None:
    key = listed_key(request)
    logout(request)  # flushes this session: its row and cookie go
    if key:
        UserSession.objects.filter(session_key=key).delete()
