"""Every detection rule in one place: the table of rules (name, severity, threshold, window, what
it reads) and one function per rule over the events a run loaded (`Scene`).

The functions are pure: they see only the `Scene` (events of the window, the people's hourly
history before it, the business's time zone and staff-side members) and return `Finding`s, so
the same code judges the database's events (evaluate.py) and a replayed synthetic week
(tests/detection). Nothing here reads or writes the database.

A rule never names a customer: subjects are a person's user id or a network address, evidence
is counts, the window, the threshold and the ids of the audit events behind it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from custodia.core.audit import AuditAction
from custodia.detection.models import Severity

# How many event ids an alert keeps as its evidence (the counts say how many there were).
EVIDENCE_IDS = 50


@dataclass(frozen=True)
class Event:
    """One audit event as the rules see it."""

    id: int
    at: dt.datetime
    user_id: uuid.UUID | None
    action: str
    role: str = ""
    target_id: str = ""  # for a failed sign-in: the keyed digest of the name tried
    ip: str | None = None
    kind: str = ""  # for a sign-in: the accounts verdict ("login" or "login.new_device")
    records: int = 0  # for a bulk read: how many records it returned


@dataclass(frozen=True)
class Bucket:
    """One person's activity in one hour (UTC) before the window: what baselines are made of."""

    user_id: uuid.UUID
    hour: dt.datetime
    events: int
    records: int


@dataclass
class Scene:
    """What one evaluation sees: now, the window's events and the history before them."""

    now: dt.datetime
    events: Sequence[Event] = ()  # the business's trail (empty for the platform rules)
    sign_ins: Sequence[Event] = ()  # the platform chain's sign-in events
    history: Sequence[Bucket] = ()
    time_zone: str = "UTC"
    # Owners, managers and staff of the business (their sign-ins concern it); empty: platform.
    members: frozenset[uuid.UUID] = frozenset()

    def recent(self, window: dt.timedelta, *, sign_ins: bool = False) -> list[Event]:
        """The trail's events (or the sign-ins) of the last `window`, oldest first."""
        start = self.now - window
        events = self.sign_ins if sign_ins else self.events
        return sorted((e for e in events if start < e.at <= self.now), key=lambda e: e.id)


@dataclass(frozen=True)
class Finding:
    """What a rule found: its subject (a person's id or an address) and the evidence."""

    rule: str
    subject: str
    evidence: dict[str, Any]
    event_ids: list[int] = field(default_factory=list)


RuleFunction = Callable[[Scene, "Rule"], list[Finding]]


@dataclass(frozen=True)
class Rule:
    """One row of the table: a rule, how bad its finding is, its threshold and window."""

    name: str
    label: str
    severity: Severity
    threshold: int
    window: dt.timedelta
    reads: str
    platform: bool  # True: platform-wide (no business); False: evaluated business by business
    function: RuleFunction | None = None  # None: raised by a failure hook (audit verify, drill)

    def evaluate(self, scene: Scene) -> list[Finding]:
        """This rule's findings in `scene`."""
        return [] if self.function is None else self.function(scene, self)


def _finding(rule: Rule, subject: str, events: Sequence[Event], **evidence: Any) -> Finding:
    ids = [event.id for event in events]
    return Finding(
        rule=rule.name,
        subject=subject,
        evidence={
            "count": len(events),
            "window_minutes": int(rule.window.total_seconds() // 60),
            "threshold": rule.threshold,
            **evidence,
        },
        event_ids=ids[-EVIDENCE_IDS:],
    )


def network_of(ip: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address."""
    if not ip:
        return ""
    address = ipaddress.ip_address(ip)
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def _by(events: Iterable[Event], key: Callable[[Event], Any]) -> dict[Any, list[Event]]:
    groups: dict[Any, list[Event]] = defaultdict(list)
    for event in events:
        value = key(event)
        if value is not None and value != "":
            groups[value].append(event)
    return groups


# --- The sign-in rules (the platform chain) -------------------------------------------------


def credential_stuffing(scene: Scene, rule: Rule) -> list[Finding]:
    """Many different login names failing from one address."""
    failed = [
        e for e in scene.recent(rule.window, sign_ins=True) if e.action == AuditAction.LOGIN_FAILED
    ]
    findings = []
    for ip, events in _by(failed, lambda e: e.ip).items():
        names = {e.target_id for e in events}
        if len(names) >= rule.threshold:
            findings.append(_finding(rule, f"address {ip}", events, names=len(names)))
    return findings


# Spraying tries one password on each of many names, each only once or twice (to stay under the
# lockout), from several addresses; the password itself is never seen or stored.
SPRAY_MAX_TRIES_PER_NAME = 2
SPRAY_MIN_ADDRESSES = 3


def password_spraying(scene: Scene, rule: Rule) -> list[Finding]:
    """Many names failing a few times each, across several addresses: one guess per name."""
    failed = [
        e for e in scene.recent(rule.window, sign_ins=True) if e.action == AuditAction.LOGIN_FAILED
    ]
    per_name = _by(failed, lambda e: e.target_id)
    sprayed = [events for events in per_name.values() if len(events) <= SPRAY_MAX_TRIES_PER_NAME]
    addresses = {e.ip for events in sprayed for e in events if e.ip}
    if len(sprayed) < rule.threshold or len(addresses) < SPRAY_MIN_ADDRESSES:
        return []
    events = sorted((e for group in sprayed for e in group), key=lambda e: e.id)
    return [_finding(rule, "sign-in", events, names=len(sprayed), addresses=len(addresses))]


def new_network_sign_in(scene: Scene, rule: Rule) -> list[Finding]:
    """A member signing in from a network prefix or device not seen for them lately (the
    accounts' own verdict, made from the browser, system and /24 or /48 of each sign-in)."""
    findings = []
    for event in scene.recent(rule.window, sign_ins=True):
        if (
            event.action == AuditAction.LOGIN
            and event.kind == "login.new_device"
            and event.user_id in scene.members
        ):
            subject = f"person {event.user_id} from {network_of(event.ip) or 'an unknown network'}"
            findings.append(_finding(rule, subject, [event], network=network_of(event.ip)))
    return findings


def member_lockout(scene: Scene, rule: Rule) -> list[Finding]:
    """A member's sign-in paused after repeated failures (someone may be guessing)."""
    locked = [
        e
        for e in scene.recent(rule.window, sign_ins=True)
        if e.action == AuditAction.LOCKOUT and e.user_id in scene.members
    ]
    return [
        _finding(rule, f"person {user_id}", events)
        for user_id, events in _by(locked, lambda e: e.user_id).items()
        if len(events) >= rule.threshold
    ]


# --- The business rules (its trail) ---------------------------------------------------------

# Bulk reads of customer data (each event counts the records it returned). An export's own reads
# are the export rule's.
BULK_READS = frozenset(
    {
        AuditAction.CLIENT_LIST,
        AuditAction.VISIT_LIST,
        AuditAction.VISIT_FEED,
        AuditAction.PASS_LIST,
        AuditAction.INVOICE_LIST,
        AuditAction.PAYMENT_METHOD_LIST,
    }
)
BULK_BASELINE = dt.timedelta(days=14)
BULK_FACTOR = 5
EXPORTS = frozenset({AuditAction.EXPORT_START, AuditAction.AUDIT_EXPORT})
HOURS_BASELINE = dt.timedelta(days=28)
HOURS_MIN_DAYS = 7  # a person needs this many active days before their hours count as known


def _people(scene: Scene, window: dt.timedelta) -> dict[uuid.UUID, list[Event]]:
    """The window's events by person (system tasks, with no person, are left out)."""
    return _by(scene.recent(window), lambda e: e.user_id)


def bulk_reads(scene: Scene, rule: Rule) -> list[Finding]:
    """Records read in bulk in the window far above the person's own busiest hour lately."""
    start = scene.now - BULK_BASELINE
    busiest: dict[uuid.UUID, int] = defaultdict(int)
    for bucket in scene.history:
        if bucket.hour >= start:
            busiest[bucket.user_id] = max(busiest[bucket.user_id], bucket.records)
    findings = []
    for user_id, events in _people(scene, rule.window).items():
        reads = [e for e in events if e.action in BULK_READS]
        records = sum(e.records for e in reads)
        limit = max(rule.threshold, BULK_FACTOR * busiest[user_id])
        if records > limit:
            findings.append(
                _finding(
                    rule,
                    f"person {user_id}",
                    reads,
                    records=records,
                    baseline=busiest[user_id],
                    limit=limit,
                )
            )
    return findings


def exports(scene: Scene, rule: Rule) -> list[Finding]:
    """Several exports of the business's data (or its trail) by one person in a day."""
    findings = []
    for user_id, events in _people(scene, rule.window).items():
        started = [e for e in events if e.action in EXPORTS]
        if len(started) >= rule.threshold:
            findings.append(_finding(rule, f"person {user_id}", started))
    return findings


def _local_hour(at: dt.datetime, zone: zoneinfo.ZoneInfo) -> int:
    return at.astimezone(zone).hour


def unusual_hours(scene: Scene, rule: Rule) -> list[Finding]:
    """Activity at an hour of the day (the business's time) the person was never active in,
    nor the hour either side, over the last four weeks, once they have a week's history."""
    zone = zoneinfo.ZoneInfo(scene.time_zone)
    start = scene.now - HOURS_BASELINE
    hours: dict[uuid.UUID, set[int]] = defaultdict(set)
    days: dict[uuid.UUID, set[dt.date]] = defaultdict(set)
    for bucket in scene.history:
        if bucket.hour >= start and bucket.events:
            hours[bucket.user_id].add(_local_hour(bucket.hour, zone))
            days[bucket.user_id].add(bucket.hour.astimezone(zone).date())
    findings = []
    for user_id, events in _people(scene, rule.window).items():
        if len(days[user_id]) < HOURS_MIN_DAYS:
            continue
        known = {(hour + shift) % 24 for hour in hours[user_id] for shift in (-1, 0, 1)}
        # A client at any hour reads only their own record: the rule watches the staff side.
        odd = [e for e in events if e.role != "client" and _local_hour(e.at, zone) not in known]
        if len(odd) >= rule.threshold:
            local = sorted({_local_hour(e.at, zone) for e in odd})
            findings.append(_finding(rule, f"person {user_id}", odd, local_hours=local))
    return findings


def id_probing(scene: Scene, rule: Rule) -> list[Finding]:
    """Many refusals (404s for ids out of reach) for one person: someone trying ids."""
    findings = []
    for user_id, events in _people(scene, rule.window).items():
        refused = [e for e in events if e.action == AuditAction.ACCESS_DENIED]
        if len(refused) >= rule.threshold:
            targets = len({e.target_id for e in refused})
            findings.append(_finding(rule, f"person {user_id}", refused, ids=targets))
    return findings


MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

RULES: tuple[Rule, ...] = (
    Rule(
        "credential_stuffing",
        "Credential stuffing: many accounts failing from one address",
        Severity.HIGH,
        10,
        10 * MINUTE,
        "auth.login_failed (platform chain): distinct login names per address",
        True,
        credential_stuffing,
    ),
    Rule(
        "password_spraying",
        "Password spraying: many accounts tried once or twice each",
        Severity.HIGH,
        20,
        HOUR,
        "auth.login_failed (platform chain): names with at most 2 failures, from 3+ addresses",
        True,
        password_spraying,
    ),
    Rule(
        "new_network_sign_in",
        "Sign-in from a new network or device",
        Severity.LOW,
        1,
        HOUR,
        "auth.login of the business's owners, managers and staff, kind login.new_device",
        False,
        new_network_sign_in,
    ),
    Rule(
        "member_lockout",
        "A member's sign-in was paused after failed attempts",
        Severity.MEDIUM,
        1,
        HOUR,
        "auth.lockout of the business's owners, managers and staff",
        False,
        member_lockout,
    ),
    Rule(
        "bulk_reads",
        "Bulk reads far above the person's usual",
        Severity.HIGH,
        200,
        HOUR,
        "client, visit, pass, invoice and card lists: records per person vs 5x their busiest"
        " hour of the last 14 days",
        False,
        bulk_reads,
    ),
    Rule(
        "exports",
        "Several exports by one person in a day",
        Severity.MEDIUM,
        3,
        DAY,
        "export.start, audit.export per person",
        False,
        exports,
    ),
    Rule(
        "unusual_hours",
        "Activity at an unusual hour for this person",
        Severity.LOW,
        3,
        HOUR,
        "every event per person vs the local hours they were active in the last 28 days",
        False,
        unusual_hours,
    ),
    Rule(
        "id_probing",
        "Repeated refusals: someone trying ids out of their reach",
        Severity.HIGH,
        10,
        10 * MINUTE,
        "access.denied per person",
        False,
        id_probing,
    ),
    Rule(
        "audit_chain_broken",
        "An audit chain failed verification",
        Severity.CRITICAL,
        1,
        DAY,
        "custodia audit verify / checkpoint results",
        True,
    ),
    Rule(
        "restore_drill_failed",
        "A restore drill failed",
        Severity.CRITICAL,
        1,
        DAY,
        "restore drill results (lifecycle/backups/drill.py)",
        True,
    ),
)
BY_NAME = {rule.name: rule for rule in RULES}
# How far back a run loads sign-ins (platform chain) and a business's events: the longest
# window of the rules that read them (a day only for exports, loaded alone that far).
SIGN_IN_LOOKBACK = max(rule.window for rule in RULES if rule.function is not None and rule.platform)
EVENT_LOOKBACK = HOUR
EXPORT_LOOKBACK = DAY


def rule_named(name: str) -> Rule:
    """The rule called `name`; KeyError if there is none."""
    return BY_NAME[name]


def label_of(name: str) -> str:
    """The words for the rule called `name` (its name, if it is no longer in the table)."""
    rule = BY_NAME.get(name)
    return rule.label if rule is not None else name


def evaluate(scene: Scene, *, platform: bool) -> list[Finding]:
    """Every finding of the platform rules, or of the business rules, in `scene`."""
    return [
        finding for rule in RULES if rule.platform == platform for finding in rule.evaluate(scene)
    ]
