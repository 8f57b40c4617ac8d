"""What the audit trail records: one enum of actions, one of outcomes."""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    """`noun.verb`; stored as text, so a new member needs no migration."""

    # Customer data: single reads, reveals, bulk reads, writes.
    CLIENT_READ = "client.read"
    CLIENT_LIST = "client.list"
    CLIENT_CREATE = "client.create"
    CLIENT_UPDATE = "client.update"
    CLIENT_DELETE = "client.delete"
    ACCESS_CODES_REVEAL = "client.access_codes.reveal"
    ASSIGNMENT_CREATE = "assignment.create"
    ASSIGNMENT_DELETE = "assignment.delete"
    VISIT_READ = "visit.read"
    VISIT_LIST = "visit.list"
    VISIT_CREATE = "visit.create"
    VISIT_REQUEST = "visit.request"
    VISIT_UPDATE = "visit.update"
    VISIT_CONFIRM = "visit.confirm"
    VISIT_DELETE = "visit.delete"
    SERVICE_CREATE = "service.create"
    SERVICE_UPDATE = "service.update"
    SERVICE_DELETE = "service.delete"
    # People and permissions.
    MEMBER_INVITE = "member.invite"
    MEMBER_JOIN = "member.join"
    MEMBER_ROLE_CHANGE = "member.role_change"
    MEMBER_DEACTIVATE = "member.deactivate"
    INVITATION_REVOKE = "invitation.revoke"
    TOKEN_CREATE = "token.create"  # noqa: S105
    TOKEN_REVOKE = "token.revoke"  # noqa: S105
    # Configuration.
    BUSINESS_CREATE = "business.create"
    BUSINESS_DELETE = "business.delete"
    SECURITY_POLICY_UPDATE = "business.security_policy.update"
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
    KEY_ROTATE = "crypto.key.rotate"
    KEY_DESTROY = "crypto.key.destroy"
    KEK_ROTATE = "crypto.kek.rotate"
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
