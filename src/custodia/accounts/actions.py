"""Writes for accounts: personal API tokens, calendar feeds, security events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest
from django.utils import timezone

from custodia.accounts.access import (
    CALENDAR_FEED_PURPOSE,
    TOKEN_PREFIX,
    TOKEN_PURPOSE,
    live_calendar_feed,
)
from custodia.accounts.digests import issue_secret
from custodia.accounts.models import ApiToken, CalendarFeed, SecurityEvent, SecurityEventKind
from custodia.accounts.stepup import require_step_up
from custodia.accounts.throttle import user_agent_summary
from custodia.core.actor import Actor, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import (
    EXPLICIT_SCOPES,
    NEVER_TOKEN_SCOPES,
    ROLE_PERMISSIONS,
    Permission,
)
from custodia.core.requestctx import client_ip


def do_create_api_token(
    *, actor: Actor, name: str, scopes: Iterable[str] | None = None, days: int | None = None
) -> tuple[ApiToken, str]:
    """A new token for the actor's membership; returns it with the plain value, shown once."""
    require_active(actor)
    actor.require(Permission.TOKENS_CREATE)
    require_step_up(actor)
    allowed = ROLE_PERMISSIONS[actor.role]
    if scopes is None:
        wanted = {p.value for p in allowed if p not in EXPLICIT_SCOPES | NEVER_TOKEN_SCOPES}
    else:
        wanted = set(scopes)
    if not wanted:
        raise ValidationError({"scopes": "Choose at least one scope, or leave scopes out for all."})
    unknown = sorted(scope for scope in wanted if scope not in Permission._value2member_map_)
    if unknown:
        raise ValidationError({"scopes": f"Unknown scopes: {', '.join(unknown)}."})
    never = sorted(scope for scope in wanted if Permission(scope) in NEVER_TOKEN_SCOPES)
    if never:
        raise ValidationError(
            {"scopes": f"No API token may hold card permissions: {', '.join(never)}."}
        )
    beyond = sorted(scope for scope in wanted if Permission(scope) not in allowed)
    if beyond:
        raise ValidationError({"scopes": f"Your role cannot grant: {', '.join(beyond)}."})
    days = settings.API_TOKEN_DEFAULT_DAYS if days is None else days
    if not 1 <= days <= 365:
        raise ValidationError({"days": "A token lasts between 1 and 365 days."})
    name = name.strip()[:80] or "API token"
    issued = issue_secret(TOKEN_PURPOSE)
    with transaction.atomic():
        token = ApiToken.objects.create(
            tenant_id=actor.tenant_id,
            user=actor.user,
            membership=actor.membership,
            name=name,
            prefix=issued.prefix,
            digest=issued.digest,
            scopes=sorted(wanted),
            expires_at=timezone.now() + dt.timedelta(days=days),
        )
        # The public prefix names the token; the secret is never recorded.
        record(
            AuditAction.TOKEN_CREATE,
            actor=actor,
            target=token,
            detail={"prefix": token.prefix, "scopes": token.scopes, "days": days},
        )
    return token, f"{TOKEN_PREFIX}_{issued.prefix}_{issued.secret}"


def do_revoke_api_token(token: ApiToken, *, actor: Actor) -> None:
    """The token stops working at once."""
    require_active(actor)
    if token.user_id != actor.user.pk or token.tenant_id != actor.tenant_id:
        raise Http404("No such token.")
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(AuditAction.TOKEN_REVOKE, actor=actor, target=token, detail={"prefix": token.prefix})


def do_create_calendar_feed(*, actor: Actor) -> tuple[CalendarFeed, str]:
    """A new calendar feed of the actor's own visits, revoking the one before it; returns it with
    the secret part of its address (`<prefix>/<secret>`), shown once and never stored.

    Like an API token, a feed is a credential: staff, managers and owners may make one for
    themselves (`TOKENS_CREATE`, which clients lack), with a fresh proof of identity (step-up,
    which an API token never has).
    """
    require_active(actor)
    actor.require(Permission.TOKENS_CREATE)
    require_step_up(actor)
    issued = issue_secret(CALENDAR_FEED_PURPOSE)
    with transaction.atomic():
        previous = live_calendar_feed(actor)
        if previous is not None:
            _revoke_calendar_feed(previous, actor=actor)
        feed = CalendarFeed.objects.create(
            tenant_id=actor.tenant_id,
            user=actor.user,
            membership=actor.membership,
            prefix=issued.prefix,
            digest=issued.digest,
        )
        # The public prefix names the feed; the secret is never recorded.
        record(
            AuditAction.CALENDAR_FEED_CREATE,
            actor=actor,
            target=feed,
            detail={"prefix": feed.prefix},
        )
    return feed, f"{issued.prefix}/{issued.secret}"


def do_revoke_calendar_feed(feed: CalendarFeed, *, actor: Actor) -> None:
    """The feed's address stops working at once (404, as for an address never issued)."""
    require_active(actor)
    actor.require(Permission.TOKENS_CREATE)
    if feed.membership_id != actor.membership.pk or feed.tenant_id != actor.tenant_id:
        raise Http404("No such calendar feed.")
    with transaction.atomic():
        _revoke_calendar_feed(feed, actor=actor)


def _revoke_calendar_feed(feed: CalendarFeed, *, actor: Actor) -> None:
    feed.revoked_at = timezone.now()
    feed.save(update_fields=["revoked_at"])
    record(
        AuditAction.CALENDAR_FEED_REVOKE, actor=actor, target=feed, detail={"prefix": feed.prefix}
    )


AUDITED_KINDS = {
    SecurityEventKind.LOGIN: AuditAction.LOGIN,
    SecurityEventKind.NEW_DEVICE_LOGIN: AuditAction.LOGIN,
    SecurityEventKind.PASSWORD_CHANGED: AuditAction.PASSWORD_CHANGED,
    SecurityEventKind.PASSWORD_RESET: AuditAction.PASSWORD_CHANGED,
    SecurityEventKind.MFA_ADDED: AuditAction.MFA_ADDED,
    SecurityEventKind.MFA_REMOVED: AuditAction.MFA_REMOVED,
    SecurityEventKind.EMAIL_CHANGED: AuditAction.EMAIL_CHANGED,
    SecurityEventKind.LOCKOUT: AuditAction.LOCKOUT,
    SecurityEventKind.UNLOCKED: AuditAction.UNLOCK,
    SecurityEventKind.API_RATE_LIMITED: AuditAction.RATE_LIMITED,
}


def do_record_security_event(
    user: Any,
    kind: SecurityEventKind,
    *,
    request: HttpRequest | None,
    device: str = "",
    detail: str = "",
) -> SecurityEvent:
    """One entry in the person's security panel: what, when, from which address and browser;
    and the same in the audit trail (the platform chain: a login is no one business's)."""
    with transaction.atomic():
        record(
            AUDITED_KINDS[kind],
            user=user,
            target_type="user",
            target_id=user.pk,
            detail={"kind": str(kind), **({"detail": detail[:200]} if detail else {})},
        )
        return SecurityEvent.objects.create(
            user_id=user.pk,
            kind=kind,
            at=timezone.now(),
            ip=client_ip(request) if request is not None else None,
            user_agent=user_agent_summary(request),
            device=device[:160],
            detail=detail[:200],
        )
