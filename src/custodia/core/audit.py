"""The audit trail's vocabulary (what happened, how it ended) and its writer.

Writing is one INSERT per event, in the caller's transaction, with no model: the table is the
audit app's (audit/models.py), and its rows are only ever written here, as plain SQL.

The database completes each row (id, time, lane, sequence number, hash: audit/migrations/0002),
so an event is one round trip and never a read-modify-write in Python. No RETURNING: the actor
usually may not read the trail back, and row-level security would refuse the returned row.
A failing insert raises, which fails the action or the request with it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Model, QuerySet

from custodia.core import requestctx
from custodia.core.actor import Actor
from custodia.core.dbcontext import ensure_context


class AuditAction(StrEnum):
    """`noun.verb`; stored as text, so a new member needs no migration."""

    # Customer data: single reads, reveals, bulk reads, writes.
    CLIENT_READ = "client.read"
    CLIENT_LIST = "client.list"
    CLIENT_CREATE = "client.create"
    CLIENT_UPDATE = "client.update"
    CLIENT_DELETE = "client.delete"
    CLIENT_ERASE = "client.erase"
    CLIENT_ERASURE_REQUEST = "client.erasure_request"
    # Clients created from a CSV file (clients/importing.py): one event with the count, and a
    # client.create for each client, as a single creation records.
    CLIENT_IMPORT = "client.import"
    ACCESS_CODES_REVEAL = "client.access_codes.reveal"
    # Pets and household details (clients/profiles.py): reads name the client; the household's
    # sealed details (Wi-Fi, emergency contact) are a reveal of their own, like door codes.
    PROFILE_READ = "client.profile.read"
    HOUSEHOLD_REVEAL = "client.household.reveal"
    HOUSEHOLD_UPDATE = "client.household.update"
    PET_CREATE = "pet.create"
    PET_UPDATE = "pet.update"
    PET_DELETE = "pet.delete"
    ASSIGNMENT_CREATE = "assignment.create"
    ASSIGNMENT_DELETE = "assignment.delete"
    VISIT_READ = "visit.read"
    VISIT_LIST = "visit.list"
    # A member's calendar feed fetched (accounts/feeds.py): a bulk read of the visits in it.
    VISIT_FEED = "visit.feed"
    VISIT_CREATE = "visit.create"
    VISIT_REQUEST = "visit.request"
    VISIT_UPDATE = "visit.update"
    VISIT_CONFIRM = "visit.confirm"
    VISIT_DELETE = "visit.delete"
    # Visit emails (scheduling/notices.py): each one sent, and a member's choices of them.
    NOTICE_SEND = "notice.send"
    NOTICE_CHOICES_UPDATE = "notice.choices_update"
    VISIT_CHECK_IN = "visit.check_in"
    VISIT_CHECK_OUT = "visit.check_out"
    VISIT_PHOTO_READ = "visit.photo.read"
    VISIT_PHOTO_ADD = "visit.photo.add"
    VISIT_PHOTO_DELETE = "visit.photo.delete"
    SERVICE_CREATE = "service.create"
    SERVICE_UPDATE = "service.update"
    SERVICE_DELETE = "service.delete"
    # Money without cards (payments/): reads of invoices and passes name their client.
    PASS_TYPE_CREATE = "pass_type.create"  # noqa: S105
    PASS_TYPE_UPDATE = "pass_type.update"  # noqa: S105
    PLAN_CREATE = "membership_plan.create"
    PLAN_UPDATE = "membership_plan.update"
    PASS_READ = "pass.read"  # noqa: S105
    PASS_LIST = "pass.list"  # noqa: S105
    PASS_SELL = "pass.sell"  # noqa: S105
    PASS_VOID = "pass.void"  # noqa: S105
    PASS_EXPIRE = "pass.expire"  # noqa: S105
    CREDIT_USE = "pass.credit_use"
    CREDIT_RETURN = "pass.credit_return"
    MEMBERSHIP_START = "client_membership.start"
    MEMBERSHIP_CANCEL = "client_membership.cancel"
    MEMBERSHIP_CREDIT_USE = "client_membership.credit_use"
    MEMBERSHIP_CREDIT_RETURN = "client_membership.credit_return"
    MEMBERSHIP_RENEW = "client_membership.renew"
    MEMBERSHIP_REACTIVATE = "client_membership.reactivate"
    MEMBERSHIP_AUTOPAY_ON = "client_membership.autopay_on"
    MEMBERSHIP_AUTOPAY_OFF = "client_membership.autopay_off"
    MEMBERSHIP_AUTOPAY_CHARGE = "client_membership.autopay_charge"
    MEMBERSHIP_READ = "client_membership.read"
    INVOICE_READ = "invoice.read"
    INVOICE_LIST = "invoice.list"
    INVOICE_CREATE = "invoice.create"
    INVOICE_LINE_ADD = "invoice.line_add"
    INVOICE_LINE_REMOVE = "invoice.line_remove"
    INVOICE_ISSUE = "invoice.issue"
    INVOICE_VOID = "invoice.void"
    PAYMENT_RECORD = "payment.record"
    PAYMENT_SETTINGS_UPDATE = "business.payment_settings.update"
    PAYMENT_METHOD_ADD = "payment_method.add"
    PAYMENT_METHOD_REMOVE = "payment_method.remove"
    PAYMENT_METHOD_LIST = "payment_method.list"
    PAYMENT_CHARGE = "payment.charge"
    PAYMENT_REFUND = "payment.refund"
    # People and permissions.
    MEMBER_INVITE = "member.invite"
    MEMBER_JOIN = "member.join"
    MEMBER_ROLE_CHANGE = "member.role_change"
    MEMBER_CARDS_GRANT = "member.cards_grant"
    MEMBER_DEACTIVATE = "member.deactivate"
    INVITATION_REVOKE = "invitation.revoke"
    TOKEN_CREATE = "token.create"  # noqa: S105
    TOKEN_REVOKE = "token.revoke"  # noqa: S105
    # A member's secret calendar feed URL issued or revoked (never the secret itself).
    CALENDAR_FEED_CREATE = "calendar_feed.create"
    CALENDAR_FEED_REVOKE = "calendar_feed.revoke"
    # Configuration.
    BUSINESS_CREATE = "business.create"
    BUSINESS_DELETE = "business.delete"
    BUSINESS_CLOSE = "business.close"
    BUSINESS_REOPEN = "business.reopen"
    BUSINESS_PURGE = "business.purge"
    SECURITY_POLICY_UPDATE = "business.security_policy.update"
    # A business's own security page for its clients (transparency/actions.py).
    TRANSPARENCY_PUBLISH = "business.transparency.publish"
    TRANSPARENCY_UNPUBLISH = "business.transparency.unpublish"
    BUSINESS_PROFILE_UPDATE = "business.profile.update"
    # Authentication (the platform chain: a login belongs to no single business).
    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    LOCKOUT = "auth.lockout"
    UNLOCK = "auth.unlock"
    MFA_ADDED = "auth.mfa_added"
    MFA_REMOVED = "auth.mfa_removed"
    MFA_FAILED = "auth.mfa_failed"
    PASSWORD_CHANGED = "auth.password_changed"  # noqa: S105
    EMAIL_CHANGED = "auth.email_changed"
    SESSION_ENDED = "auth.session_ended"
    # An API token or session over its rate limit (the first refusal in a minute).
    RATE_LIMITED = "auth.rate_limited"
    # The trail itself and the keys.
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    AUDIT_CHECKPOINT = "audit.checkpoint"
    AUDIT_PURGE = "audit.purge"
    # Exports of the data (lifecycle/export): started, each bulk read of it, downloaded.
    EXPORT_START = "export.start"
    EXPORT_READ = "export.read"
    EXPORT_DOWNLOAD = "export.download"
    KEY_ROTATE = "crypto.key.rotate"
    KEY_DESTROY = "crypto.key.destroy"
    # A business's key file put back from a keystore backup (lifecycle/backups/keystore.py).
    KEY_RESTORE = "crypto.key.restore"
    KEK_ROTATE = "crypto.kek.rotate"
    # Background work one person started (jobs/actions.py); what the job then does is recorded
    # by its own events, each naming the job (core/requestctx.py: running_job).
    JOB_START = "job.start"
    # Outgoing webhooks (custodia.webhooks): endpoints managed by owners, their delivery log read,
    # a delivery sent again, an endpoint disabled after failing deliveries. Never a secret.
    WEBHOOK_CREATE = "webhook.create"
    WEBHOOK_UPDATE = "webhook.update"
    WEBHOOK_ROTATE = "webhook.rotate"
    WEBHOOK_DELETE = "webhook.delete"
    WEBHOOK_TEST = "webhook.test"
    WEBHOOK_RESEND = "webhook.resend"
    WEBHOOK_DISABLE = "webhook.disable"
    WEBHOOK_LOG_READ = "webhook.log.read"
    # Wallet passes (custodia.wallet): a pass issued to a wallet (or its token issued anew), a
    # device registered for its updates or unregistered.
    WALLET_PASS_ISSUE = "wallet_pass.issue"  # noqa: S105
    WALLET_DEVICE_REGISTER = "wallet_device.register"
    WALLET_DEVICE_UNREGISTER = "wallet_device.unregister"
    # Platform operators (custodia.platform, docs/operators.md), on the platform chain: accounts
    # made and disabled at the console, each console page read, vulnerability reports received,
    # read, answered and moved on.
    OPERATOR_CREATE = "operator.create"
    OPERATOR_DISABLE = "operator.disable"
    OPERATOR_CONSOLE_READ = "operator.console.read"
    REPORT_SUBMIT = "vulnerability_report.submit"
    REPORT_READ = "vulnerability_report.read"
    REPORT_RESPOND = "vulnerability_report.respond"
    REPORT_STATUS = "vulnerability_report.status"
    # Detection alerts (custodia.detection): an owner's page of them read, one acknowledged.
    ALERT_READ = "alert.read"
    ALERT_ACKNOWLEDGE = "alert.acknowledge"
    # Refused: a 403 or 404 answered to a signed-in person (someone else's object, a forbidden
    # action); the path names only ids.
    ACCESS_DENIED = "access.denied"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").replace(".", ": ", 1)


class Outcome(StrEnum):
    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"


INSERT_SQL = """INSERT INTO audit_auditevent (id, tenant_id, lane, seq, occurred_at,
    actor_user_id, actor_role, action, outcome, target_type, target_id, client_id, subject_ids,
    ip, user_agent, request_id, purpose, detail, hash)
    VALUES (0, %s, 0, 0, now(), %s, %s, %s, %s, %s, %s, %s, %s::uuid[], %s::inet, %s, %s, %s,
    %s::jsonb, '')"""
# The same event for a row that one statement reads and records together (`read_one`): its
# target and client come from the row found, and no row found records nothing.
INSERT_FOUND_SQL = """INSERT INTO audit_auditevent (id, tenant_id, lane, seq, occurred_at,
    actor_user_id, actor_role, action, outcome, target_type, target_id, client_id, subject_ids,
    ip, user_agent, request_id, purpose, detail, hash)
    SELECT 0, %s, 0, 0, now(), %s, %s, %s, %s, %s, found.{pk}::text, {client}, %s::uuid[],
    %s::inet, %s, %s, %s, %s::jsonb, '' FROM found"""
READ_ONE_SQL = "WITH found AS MATERIALIZED ({select}), recorded AS ({insert}) SELECT * FROM found"
# The positions of the target id and the client id in `_event_values`.
TARGET_VALUES = slice(6, 8)

M = TypeVar("M", bound=Model)


def record(
    action: AuditAction,
    *,
    actor: Actor | None = None,
    user: Any = None,
    tenant_id: uuid.UUID | None = None,
    target: Any = None,
    target_type: str = "",
    target_id: object = "",
    client_id: object = None,
    subject_ids: Iterable[object] | None = None,
    outcome: Outcome = Outcome.OK,
    purpose: str = "",
    detail: dict[str, Any] | None = None,
    using: str = "default",
) -> None:
    """Append one event: by `actor` (a membership in a business) or `user` (the platform chain).

    `target` is a model instance (type and id are taken from it, and its client, if it is or has
    one). `detail` carries field names and counts, never the values of customer fields.
    """
    if not settings.AUDIT_ENABLED:
        return
    values = _event_values(
        action,
        actor=actor,
        user=user,
        tenant_id=tenant_id,
        target=target,
        target_type=target_type,
        target_id=target_id,
        client_id=client_id,
        subject_ids=subject_ids,
        outcome=outcome,
        purpose=purpose,
        detail=detail,
    )
    tenant_id = values[0]
    if tenant_id is not None:
        # A business's chain takes events only in that business's context, which only a
        # verified context can name (core/dbcontext.py).
        with connections[using].cursor() as cursor:
            cursor.execute(INSERT_SQL, values)
        return
    # The platform chain takes events only in a verified context too (a session with the app
    # role's password alone cannot forge sign-ins): this transaction's, else an empty one.
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        ensure_context(using=using)
        cursor.execute(INSERT_SQL, values)


def record_each(
    action: AuditAction, *, actor: Actor, events: Iterable[tuple[Any, dict[str, Any]]]
) -> None:
    """One event per `(target, detail)`, each exactly as `record(action, actor=actor,
    target=target, detail=detail)` writes it, sent together (psycopg pipelines executemany):
    a bulk write's thousands of events cost a few round trips, not one each."""
    if not settings.AUDIT_ENABLED:
        return
    rows = [
        _event_values(
            action,
            actor=actor,
            user=None,
            tenant_id=None,
            target=target,
            target_type="",
            target_id="",
            client_id=None,
            subject_ids=None,
            outcome=Outcome.OK,
            purpose="",
            detail=detail,
        )
        for target, detail in events
    ]
    if rows:
        with connections["default"].cursor() as cursor:
            cursor.executemany(INSERT_SQL, rows)


def read_one(queryset: QuerySet[M], action: AuditAction, *, actor: Actor) -> M | None:
    """The one row of `queryset` (narrowed to one primary key by the caller), or None.

    A row found is recorded as `action` by `actor` in the statement that reads it: one round trip
    where `get` and `record` make two, and no way to read without the event (a data-modifying
    WITH runs whatever the outer query fetches). The target and its client are the row's own.
    One table's columns only: a `select_related` join would name columns twice.
    """
    if not settings.AUDIT_ENABLED:
        return queryset.first()
    model = queryset.model
    meta = model._meta
    if queryset.query.select_related:
        raise ValueError("read_one reads one table: drop select_related")
    # The queryset's own compiler: its select list is the row layout of `found`, and its
    # converters (decryption included) turn the row into the model as a plain `get` would.
    compiler = queryset[:2].query.get_compiler(using=queryset.db)
    select, select_params = compiler.as_sql()
    if meta.model_name == "client":
        client = f"found.{meta.pk.column}"
    else:
        field = next((f for f in meta.concrete_fields if f.attname == "client_id"), None)
        client = "NULL" if field is None else f"found.{field.column}"
    values = _event_values(
        action,
        actor=actor,
        user=None,
        tenant_id=None,
        target=None,
        target_type=meta.model_name or "",
        target_id="",
        client_id=None,
        subject_ids=None,
        outcome=Outcome.OK,
        purpose="",
        detail=None,
    )
    del values[TARGET_VALUES]
    insert = INSERT_FOUND_SQL.format(pk=meta.pk.column, client=client)
    sql = READ_ONE_SQL.format(select=select, insert=insert)
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, [*select_params, *values])
        rows = cursor.fetchall()
    if not rows:
        return None
    if len(rows) > 1:
        raise model.MultipleObjectsReturned(  # type: ignore[attr-defined]
            f"more than one {meta.model_name} read as one"
        )
    columns = [column for column, _sql, _alias in compiler.select]
    if len(columns) != len(compiler.klass_info["select_fields"]):
        raise ValueError("read_one reads one model's fields: no annotations or extra columns")
    converters = compiler.get_converters(columns)
    row = next(iter(compiler.apply_converters(rows, converters))) if converters else rows[0]
    names = [column.target.attname for column in columns]
    return model.from_db(queryset.db, names, row)


def _event_values(
    action: AuditAction,
    *,
    actor: Actor | None,
    user: Any,
    tenant_id: uuid.UUID | None,
    target: Any,
    target_type: str,
    target_id: object,
    client_id: object,
    subject_ids: Iterable[object] | None,
    outcome: Outcome,
    purpose: str,
    detail: dict[str, Any] | None,
) -> list[Any]:
    """The parameters of INSERT_SQL for one event (see `record`)."""
    if actor is not None:
        user = actor.user
        tenant_id = actor.tenant_id
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or target.pk
        if client_id is None:
            client_id = target.pk if target_type == "client" else getattr(target, "client_id", None)
    info = requestctx.current()
    return [
        tenant_id,
        getattr(user, "pk", None),
        actor.role.value if actor is not None else "",
        str(action),
        str(outcome),
        target_type,
        str(target_id or "")[:64],
        None if client_id is None else str(client_id),
        None if subject_ids is None else list(subject_ids),
        info.ip if info else None,
        info.user_agent if info else "",
        info.request_id if info else "",
        purpose[:200],
        json.dumps(detail or {}, sort_keys=True, default=str),
    ]


def note_refusal(target_type: str, target_id: object) -> None:
    """An object the actor asked for and may not have (answered as not found).

    In a request the refusal is recorded by TenantMiddleware (web/middleware.py) once the answer
    is made, so that it survives an error answer that undoes the request's writes; elsewhere
    nothing is recorded (commands name objects they are given, not ones a stranger guessed).
    """
    info = requestctx.current()
    if info is not None:
        info.refusals.append((target_type, str(target_id)[:64]))
