"""The retention policy: each rule deletes exactly what is past its time, and nothing newer;
one failing rule never stops the others; the policy shown is the one enforced."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import CommandError

from custodia.accounts.models import LoginThrottle, SecurityEvent, SecurityEventKind, User
from custodia.lifecycle import retention
from tests.audit.test_chain import _age, _event_count, _events, _tamper

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

OWNER = retention.USING
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _user(email: str) -> User:
    user = User(email=email)
    user.set_unusable_password()
    user.save(using=OWNER)
    return user


def _session(key: str, expires: dt.datetime, user: User | None = None) -> None:
    Session.objects.using(OWNER).create(session_key=key, session_data="x", expire_date=expires)
    if user is not None:
        _listed(key, user)


def _listed(key: str, user: User) -> None:
    UserSession.objects.using(OWNER).create(
        user=user, session_key=key, ip="192.0.2.1", user_agent="test",
        created_at=NOW, last_seen_at=NOW, data={},
    )  # fmt: skip


def test_sessions_go_when_they_end_and_their_list_entries_with_them() -> None:
    user = _user("sessions@example.com")
    _session("live", NOW + dt.timedelta(seconds=1), user)
    _session("ended", NOW - dt.timedelta(seconds=1), user)
    _session("just-ended", NOW, user)  # expiry is exclusive: at NOW it is over
    _listed("signed-out", user)  # its session row is already gone

    assert retention.enforce(NOW, only={"sessions"}) == [retention.Outcome("sessions", 5)]
    assert list(Session.objects.using(OWNER).values_list("session_key", flat=True)) == ["live"]
    listed = UserSession.objects.using(OWNER).values_list("session_key", flat=True)
    assert list(listed) == ["live"]


def test_failed_sign_in_counters_go_a_series_after_the_last_failure_unless_paused() -> None:
    forget = dt.timedelta(seconds=retention.settings.LOGIN_LOCKOUT_FORGET_SECONDS)
    rows = {
        "stale": (NOW - forget - dt.timedelta(seconds=1), None),
        "at-the-limit": (NOW - forget, None),
        "recent": (NOW - forget + dt.timedelta(minutes=1), None),
        "stale-but-paused": (NOW - forget - dt.timedelta(days=1), NOW + dt.timedelta(minutes=5)),
        "stale-pause-over": (NOW - forget - dt.timedelta(days=1), NOW - dt.timedelta(minutes=5)),
    }
    for key, (last_failure, locked_until) in rows.items():
        LoginThrottle.objects.using(OWNER).create(
            key=key, failures=3, last_failure_at=last_failure, locked_until=locked_until
        )

    outcome = retention.enforce(NOW, only={"login-throttles"})

    assert outcome == [retention.Outcome("login-throttles", 3)]
    kept = set(LoginThrottle.objects.using(OWNER).values_list("key", flat=True))
    assert kept == {"recent", "stale-but-paused"}


def test_security_events_go_after_a_year_and_not_a_moment_sooner() -> None:
    user = _user("events@example.com")
    year = dt.timedelta(days=retention.SECURITY_EVENT_DAYS)
    for name, at in {
        "old": NOW - year - dt.timedelta(days=1),
        "due": NOW - year,
        "young": NOW - year + dt.timedelta(seconds=1),
    }.items():
        SecurityEvent.objects.using(OWNER).create(
            user=user, kind=SecurityEventKind.LOGIN, at=at, detail=name
        )

    assert retention.enforce(NOW, only={"security-events"}) == [
        retention.Outcome("security-events", 2)
    ]
    assert list(SecurityEvent.objects.using(OWNER).values_list("detail", flat=True)) == ["young"]


def test_development_mail_files_go_after_two_weeks(settings: Any, tmp_path: Path) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    ages = {"old.log": retention.DEV_MAIL_DAYS + 1, "new.log": retention.DEV_MAIL_DAYS - 1}
    for name, days in ages.items():
        path = tmp_path / name
        path.write_text("Subject: test\n")
        stamp = (NOW - dt.timedelta(days=days)).timestamp()
        os.utime(path, (stamp, stamp))

    assert retention.enforce(NOW, only={"development-mail"}) == [
        retention.Outcome("development-mail", 1)
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.log"]


def test_with_a_mail_server_no_file_is_touched(settings: Any, tmp_path: Path) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    old = tmp_path / "not-mail.txt"
    old.write_text("kept")
    os.utime(old, (0, 0))
    assert retention.enforce(NOW, only={"development-mail"}) == [
        retention.Outcome("development-mail", 0)
    ]
    assert old.exists()


def test_audit_events_past_retention_go_and_a_broken_chain_is_kept_and_reported() -> None:
    honest, tampered = uuid.uuid4(), uuid.uuid4()
    for tenant in (honest, tampered):
        _events(tenant, 4)
        _age(tenant, retention.settings.AUDIT_RETENTION_DAYS + 30)
    _tamper(
        "UPDATE audit_auditevent SET outcome = 'denied' WHERE id = "
        "(SELECT min(id) FROM audit_auditevent WHERE tenant_id = %s)",
        [tampered],
    )

    [outcome] = retention.enforce(only={"audit"})

    assert outcome.error is not None and "kept whole" in outcome.error
    assert "4 events purged" in outcome.error
    assert _event_count(tampered) == 4
    # What is left of the honest chain is the purge's own record, not the old events.
    assert _event_count(honest) < 4


def test_a_failing_rule_is_reported_and_the_others_still_run(settings: Any, tmp_path: Path) -> None:
    unusable = tmp_path / "a-file-not-a-directory"
    unusable.write_text("")
    settings.BACKUP_DIR = unusable
    user = _user("isolation@example.com")
    _session("ended", NOW - dt.timedelta(days=1), user)

    outcomes = {o.key: o for o in retention.enforce(NOW, only={"backups", "sessions"})}

    assert outcomes["backups"].error is not None
    assert outcomes["sessions"] == retention.Outcome("sessions", 2)


def test_every_rule_is_enforced_and_named_once(settings: Any, tmp_path: Path) -> None:
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    rules = retention.policy()
    keys = [rule.key for rule in rules]
    assert len(keys) == len(set(keys))
    assert [o.key for o in retention.enforce(NOW)] == keys


def test_the_command_shows_the_policy_and_refuses_an_unknown_rule() -> None:
    out = StringIO()
    call_command("retention", "show", stdout=out)
    for rule in retention.policy():
        assert rule.key in out.getvalue() and rule.kept in out.getvalue()
    with pytest.raises(CommandError, match="No retention rule named nope"):
        call_command("retention", "run", "--only", "nope", stdout=StringIO())
