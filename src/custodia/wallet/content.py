"""What a wallet pass shows, and nothing more (shared by Apple's and Google's): of a punch pass
or of a membership, as the portal shows them. Never the client's name or any client field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from custodia.payments.models import ClientMembership, ClientPass, MembershipStatus, PassStatus

# What a wallet pass is made of: one of the two (WalletPass's `walletpass_one_source`).
Source = ClientPass | ClientMembership

PASS_STATUS_LABELS = {
    PassStatus.ACTIVE: "Active",
    PassStatus.USED_UP: "Used up",
    PassStatus.EXPIRED: "Expired",
    PassStatus.VOID: "Void",
}
MEMBERSHIP_STATUS_LABELS = {
    MembershipStatus.ACTIVE: "Active",
    MembershipStatus.PAST_DUE: "Past due",
    MembershipStatus.CANCELLED: "Cancelled",
}

PASS_STATES = {PassStatus.ACTIVE: "active", PassStatus.EXPIRED: "expired"}


@dataclass(frozen=True)
class PassContent:
    """The shown fields of a wallet pass, with their labels."""

    business_name: str
    kind: str  # "Pass" or "Membership": the label of the name, and of a status change
    pass_name: str
    credits_left: int
    credits_left_label: str
    credits_total: int
    credits_total_label: str
    date: str  # ISO 8601: a pass's expiry, a membership's period end
    date_label: str  # "Expires", "Renews" or "Ends"
    status: str
    # Apple's expirationDate: a pass's expiry, a cancelled membership's last period end; None
    # while a membership renews.
    expires_at: str | None
    voided: bool  # a void pass, a cancelled membership whose last period has ended
    state: str  # "active", "expired" (past its date) or "inactive" (used up, void)

    @classmethod
    def of(cls, client_pass: ClientPass, business_name: str) -> PassContent:
        """A punch pass's content."""
        status = PassStatus(client_pass.status)
        return cls(
            business_name=business_name,
            kind="Pass",
            pass_name=client_pass.name,
            credits_left=client_pass.credits_left,
            credits_left_label="Credits left",
            credits_total=client_pass.credits_total,
            credits_total_label="Credits in all",
            date=client_pass.expires_at.isoformat(),
            date_label="Expires",
            status=PASS_STATUS_LABELS.get(status, client_pass.status),
            expires_at=client_pass.expires_at.isoformat(),
            voided=status == PassStatus.VOID,
            state=PASS_STATES.get(status, "inactive"),
        )

    @classmethod
    def of_membership(
        cls, membership: ClientMembership, business_name: str, *, now: dt.datetime | None = None
    ) -> PassContent:
        """A membership's content: its current period's credits and end ("renews", or "ends"
        once cancelled; past its end a cancelled membership is void)."""
        status = MembershipStatus(membership.status)
        cancelled = status == MembershipStatus.CANCELLED
        ended = cancelled and membership.current_period_end <= (now or timezone.now())
        end = membership.current_period_end.isoformat()
        return cls(
            business_name=business_name,
            kind="Membership",
            pass_name=membership.name,
            credits_left=membership.credits_this_period,
            credits_left_label="Credits left this period",
            credits_total=membership.credits_per_month,
            credits_total_label="Credits a month",
            date=end,
            date_label="Ends" if cancelled else "Renews",
            status=MEMBERSHIP_STATUS_LABELS.get(status, membership.status),
            expires_at=end if cancelled else None,
            voided=ended,
            state="expired" if ended else "active",
        )


def content_of(source: Source, business_name: str) -> PassContent:
    """The content of a pass or a membership."""
    if isinstance(source, ClientPass):
        return PassContent.of(source, business_name)
    return PassContent.of_membership(source, business_name)
