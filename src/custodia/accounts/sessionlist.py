"""The list of a person's sessions (the security panel): one row per session, kept cheaply.

allauth.usersessions keeps the list (one `UserSession` row per session, with IP, user agent,
started and last seen); the lifetime middleware (accounts/sessions.py) refreshes a row at most once
a minute instead of on every request, so a page view does not cost a write. Like the sessions
themselves (accounts/sessionstore.py), list rows carry `stored_key(key)`, never the cookie's value.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.usersessions.adapter import get_adapter as get_usersessions_adapter
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.utils import timezone
from user_agents import parse as parse_user_agent

from custodia.accounts.sessionstore import stored_key

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.sessions.backends.base import SessionBase

logger = logging.getLogger(__name__)

# Live sessions one person may have; a login past it ends their least recently used one.
MAX_SESSIONS_PER_USER = 50


class _Listed:
    """A session as its list row names it (allauth's `create_from_request` reads only this)."""

    def __init__(self, session: SessionBase) -> None:
        if session.session_key is None:
            session.save()
        self.session_key = stored_key(str(session.session_key))


def listed_key(request: HttpRequest) -> str | None:
    """The list-row key of the request's session (None before it is saved)."""
    key = request.session.session_key
    return stored_key(key) if key else None


# What allauth keeps of a user agent (the column's length).
USER_AGENT_LENGTH = UserSession._meta.get_field("user_agent").max_length


def _client_of(request: HttpRequest) -> dict[str, str]:
    """The list row's `ip` and `user_agent` for this request, as allauth stores them."""
    return {
        "ip": get_account_adapter().get_client_ip(request),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_LENGTH],
    }


def track(request: HttpRequest) -> None:
    """Create or refresh the session's UserSession row (IP, user agent, last seen).

    While the row names the same person, address and browser, one UPDATE refreshes it (allauth's
    `create_from_request` takes a savepoint, reads, and writes the whole row: six statements);
    otherwise allauth lists the session, or updates it and sends `session_client_changed`.
    """
    listed = _Listed(request.session)
    refreshed = UserSession.objects.filter(
        session_key=listed.session_key, user_id=request.user.pk, **_client_of(request)
    ).update(last_seen_at=timezone.now())
    if not refreshed:
        UserSession.objects.create_from_request(request, session=listed)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SessionRow:
    """One line of the security panel."""

    id: int
    device: str
    ip: str
    started: dt.datetime
    last_active: dt.datetime
    current: bool


def describe_device(user_agent: str) -> str:
    """'Chrome on Linux' from a user agent string; 'Unknown device' when it says nothing."""
    if not user_agent.strip():
        return "Unknown device"
    parsed = parse_user_agent(user_agent)
    browser = parsed.browser.family if parsed.browser.family != "Other" else ""
    system = parsed.os.family if parsed.os.family != "Other" else ""
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


def list_sessions(request: HttpRequest) -> list[SessionRow]:
    """The request user's live sessions, this one first, then the most recently active."""
    current = listed_key(request)
    rows = [
        SessionRow(
            id=session.pk,
            device=describe_device(session.user_agent),
            ip=session.ip,
            started=session.created_at,
            last_active=session.last_seen_at,
            current=session.session_key == current,
        )
        for session in live_sessions(request.user)  # type: ignore[arg-type]
    ]
    rows.sort(key=lambda row: (not row.current, -row.last_active.timestamp()))
    return rows


def own_session(request: HttpRequest, session_id: int) -> UserSession | None:
    """The request user's list row `session_id` (another user's id is simply not found)."""
    return UserSession.objects.filter(pk=session_id, user_id=request.user.pk).first()


def is_current_session(request: HttpRequest, session_id: int) -> bool:
    """Whether the panel's session `session_id` is the one making this request."""
    own = own_session(request, session_id)
    return own is not None and own.session_key == listed_key(request)


def live_sessions(user: AbstractBaseUser) -> list[UserSession]:
    """The user's session-list entries whose session still exists and has not expired."""
    purge_stale_sessions(user)
    return list(UserSession.objects.filter(user_id=user.pk))


def purge_stale_sessions(user: AbstractBaseUser) -> None:
    """Forget list entries whose session is gone or expired, in one query however many.

    (allauth's own purge loads every listed session and its user, three queries each, on every
    login: an account with many sessions made each login slower, and a storm of logins slowed
    everything.)
    """
    live = Session.objects.filter(expire_date__gt=timezone.now()).values("session_key")
    UserSession.objects.filter(user_id=user.pk).exclude(session_key__in=live).delete()


def track_login(request: HttpRequest, user: AbstractBaseUser) -> None:
    """List the new session; past MAX_SESSIONS_PER_USER live ones, the least recently used end.

    A login's session is new (Django's login gives it a new key): one INSERT lists it (allauth's
    `create_from_request` takes a savepoint, reads and writes); should the row exist, it is
    rewritten for this person, address and browser.
    """
    purge_stale_sessions(user)
    listed = _Listed(request.session)
    now = timezone.now()
    UserSession.objects.bulk_create(
        [
            UserSession(
                session_key=listed.session_key,
                user_id=user.pk,
                **_client_of(request),
                created_at=now,
                last_seen_at=now,
            )
        ],
        update_conflicts=True,
        unique_fields=["session_key"],
        update_fields=["user", "ip", "user_agent", "created_at", "last_seen_at"],
    )
    oldest = list(
        UserSession.objects.filter(user_id=user.pk)
        .exclude(session_key=listed.session_key)
        .order_by("-last_seen_at")[MAX_SESSIONS_PER_USER - 1 :]
    )
    if oldest:
        get_usersessions_adapter().end_sessions(oldest)
        logger.info("oldest sessions ended at login user=%s count=%d", user.pk, len(oldest))
