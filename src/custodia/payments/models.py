"""Money without cards: what a business sells (pass types, membership plans), clients' passes and
memberships, invoices, and the payments recorded against them.

Every amount is an integer in the minor units of the business's currency (`Business.currency`);
`money.py` formats it. An invoice's total is the sum of its lines, never stored a second time;
a line's amount is its quantity times its unit price, which the database checks.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from django.db import models

from custodia.clients.models import Client
from custodia.scheduling.models import Visit
from custodia.tenancy.models import Membership, TenantOwned

NAME_LENGTH = 120
DESCRIPTION_LENGTH = 200
REFERENCE_LENGTH = 120
# Bounds the actions, forms and API schemas share (limits a business could mean; beyond them a
# typing slip, and far beyond them an overflow).
MAX_PRICE = 10_000_000  # 100,000.00 in a currency of two decimals
MAX_CREDITS = 1000
MAX_VALIDITY_DAYS = 3650
MAX_QUANTITY = 1000


def _choices(enum: type[StrEnum]) -> list[tuple[str, str]]:
    return [(member.value, member.value.replace("_", " ").capitalize()) for member in enum]


def _valid(field: str, enum: type[StrEnum]) -> models.Q:
    return models.Q(**{f"{field}__in": [member.value for member in enum]})


class PassStatus(StrEnum):
    ACTIVE = "active"
    USED_UP = "used_up"
    EXPIRED = "expired"
    VOID = "void"


class MembershipStatus(StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELLED = "cancelled"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class PaymentType(StrEnum):
    CARD = "card"
    CASH = "cash"
    OTHER = "other"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PassType(TenantOwned):
    """A punch pass the business sells: N credits for a price, valid so many days."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=NAME_LENGTH)
    credits = models.PositiveIntegerField()
    price_minor = models.PositiveIntegerField()
    validity_days = models.PositiveIntegerField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "name"], name="passtype_tenant_name")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credits__gte=1, credits__lte=MAX_CREDITS)
                & models.Q(validity_days__gte=1, validity_days__lte=MAX_VALIDITY_DAYS)
                & models.Q(price_minor__lte=MAX_PRICE),
                name="passtype_bounded",
            )
        ]

    def __str__(self) -> str:
        return self.name


class MembershipPlan(TenantOwned):
    """A monthly membership: a price a month and the credits it includes each month."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=NAME_LENGTH)
    monthly_price_minor = models.PositiveIntegerField()
    credits_per_month = models.PositiveIntegerField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "name"], name="plan_tenant_name")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credits_per_month__lte=MAX_CREDITS)
                & models.Q(monthly_price_minor__lte=MAX_PRICE),
                name="plan_bounded",
            )
        ]

    def __str__(self) -> str:
        return self.name


class ClientPass(TenantOwned):
    """A pass sold to a client: a snapshot of its type (name, credits, price) and its balance."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="passes")
    # Pass types, plans, passes and memberships are never deleted on their own (they are
    # deactivated, voided or cancelled): only with their client or business, which takes the
    # rows naming them too. DO_NOTHING keeps such deletes plain (a closed business's purge may
    # delete, never update: tenancy/0008); the foreign keys are checked at commit.
    pass_type = models.ForeignKey(
        PassType, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="sold"
    )
    name = models.CharField(max_length=NAME_LENGTH)
    credits_total = models.PositiveIntegerField()
    credits_left = models.PositiveIntegerField()
    price_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=_choices(PassStatus), default=PassStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "client", "expires_at"], name="pass_tenant_client"),
            models.Index(fields=["tenant", "status", "expires_at"], name="pass_tenant_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credits_left__lte=models.F("credits_total")),
                name="pass_credits_within_total",
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("starts_at")),
                name="pass_expires_after_start",
            ),
            models.CheckConstraint(condition=_valid("status", PassStatus), name="pass_status"),
        ]

    def __str__(self) -> str:
        return f"pass {self.pk}"


class CreditUse(TenantOwned):
    """One credit taken for a visit (-1) or given back (+1), from a pass or from a membership's
    current period (exactly one of the two); a visit takes at most one credit and gets at most
    one back, ever (the two partial unique constraints)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client_pass = models.ForeignKey(
        ClientPass, null=True, blank=True, on_delete=models.CASCADE, related_name="uses"
    )
    membership = models.ForeignKey(
        "ClientMembership", null=True, blank=True, on_delete=models.CASCADE, related_name="uses"
    )
    # A deleted visit leaves its use in the pass's history, without the visit: the database's
    # ON DELETE SET NULL (payments/0002), so that deleting visits stays one plain DELETE.
    visit = models.ForeignKey(
        Visit,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="credit_uses",
    )
    change = models.SmallIntegerField()
    reason = models.CharField(max_length=DESCRIPTION_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "client_pass", "created_at"], name="use_pass"),
            models.Index(fields=["tenant", "membership", "created_at"], name="use_membership"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(change__in=[-1, 1]), name="use_change_one"),
            models.CheckConstraint(
                condition=models.Q(client_pass__isnull=False, membership__isnull=True)
                | models.Q(client_pass__isnull=True, membership__isnull=False),
                name="use_from_one_source",
            ),
            models.UniqueConstraint(
                fields=["visit"], condition=models.Q(change=-1), name="use_one_credit_per_visit"
            ),
            models.UniqueConstraint(
                fields=["visit"], condition=models.Q(change=1), name="use_one_return_per_visit"
            ),
        ]

    def __str__(self) -> str:
        return f"credit use {self.pk}"


class ClientMembership(TenantOwned):
    """A client's membership of a plan, with its current period and the credits left in it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="memberships")
    plan = models.ForeignKey(
        MembershipPlan, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="members"
    )
    name = models.CharField(max_length=NAME_LENGTH)
    monthly_price_minor = models.PositiveIntegerField()
    credits_per_month = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=10, choices=_choices(MembershipStatus), default=MembershipStatus.ACTIVE
    )
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    # The credits left in the current period: a completed visit takes one (before any pass's,
    # since these lapse at the period's end), a renewal sets it back to `credits_per_month`.
    credits_this_period = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Autopay (actions/autopay.py): a saved card of the same client its renewals are charged
    # to, with the consent it was set under (when, and the membership id of the person who gave
    # it: a plain id, so removing that member never rewrites this row). DO_NOTHING: a card row
    # is never deleted on its own (removing it keeps the row and clears autopay, audited); it
    # goes only with its client or business, together with this row (checked at commit).
    autopay_card = models.ForeignKey(
        "PaymentMethod", null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+"
    )
    autopay_consent_at = models.DateTimeField(null=True, blank=True)
    autopay_consent_by = models.UUIDField(null=True, blank=True)
    # The renewal invoice the autopay attempts are about, how many charges of it were declined,
    # and when the task tries next (NULL: nothing to try until the next renewal).
    autopay_invoice = models.ForeignKey(
        "Invoice", null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+"
    )
    autopay_attempts = models.PositiveSmallIntegerField(default=0)
    autopay_next_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "client"], name="membership_tenant_client"),
            models.Index(fields=["tenant", "autopay_next_at"], name="membership_autopay_due"),
            models.Index(
                fields=["tenant", "status", "current_period_end"], name="membership_renewal"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(current_period_end__gt=models.F("current_period_start")),
                name="membership_period_ordered",
            ),
            models.CheckConstraint(
                condition=_valid("status", MembershipStatus), name="membership_status"
            ),
            models.CheckConstraint(
                condition=models.Q(credits_this_period__lte=models.F("credits_per_month")),
                name="membership_credits_within_month",
            ),
            # No card without the consent it was set under, no consent left without a card.
            models.CheckConstraint(
                condition=models.Q(
                    autopay_card__isnull=True,
                    autopay_consent_at__isnull=True,
                    autopay_consent_by__isnull=True,
                )
                | models.Q(
                    autopay_card__isnull=False,
                    autopay_consent_at__isnull=False,
                    autopay_consent_by__isnull=False,
                ),
                name="membership_autopay_consented",
            ),
        ]

    def __str__(self) -> str:
        return f"client membership {self.pk}"


class InvoiceCounter(TenantOwned):
    """The last invoice number a business issued: locked FOR UPDATE while the next is issued, so
    numbers are gapless and never repeat (a rolled-back issue rolls the counter back too)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="invoicecounter_one")]

    def __str__(self) -> str:
        return f"invoice counter {self.pk}"


class Invoice(TenantOwned):
    """A bill to one client: a draft until issued (which numbers it), then open, paid or void."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="invoices")
    number = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=_choices(InvoiceStatus), default=InvoiceStatus.DRAFT
    )
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="invoice_tenant_created"),
            models.Index(fields=["tenant", "client", "created_at"], name="invoice_tenant_client"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="invoice_number_unique"),
            models.CheckConstraint(
                condition=_valid("status", InvoiceStatus), name="invoice_status"
            ),
            # Issued means numbered; a draft (or a draft voided unissued) has no number.
            models.CheckConstraint(
                condition=~models.Q(status__in=["open", "paid"]) | models.Q(number__isnull=False),
                name="invoice_issued_numbered",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="draft")
                | models.Q(number__isnull=True, issued_at__isnull=True),
                name="invoice_draft_unnumbered",
            ),
        ]

    def __str__(self) -> str:
        return f"invoice {self.pk}"


class InvoiceLine(TenantOwned):
    """One line of an invoice. A visit is invoiced at most once across invoices that are not
    void: `voided` mirrors the invoice's voiding (set in the same transaction), so the partial
    unique constraint on `visit` can say it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=DESCRIPTION_LENGTH)
    quantity = models.PositiveIntegerField(default=1)
    unit_price_minor = models.PositiveIntegerField()
    amount_minor = models.PositiveBigIntegerField()
    # A deleted visit leaves its line, without the visit (ON DELETE SET NULL, as for uses).
    visit = models.ForeignKey(
        Visit,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="invoice_lines",
    )
    client_pass = models.ForeignKey(
        ClientPass, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="invoice_lines"
    )
    membership = models.ForeignKey(
        ClientMembership,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="invoice_lines",
    )
    voided = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "invoice"], name="line_tenant_invoice")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor=models.F("quantity") * models.F("unit_price_minor"))
                & models.Q(quantity__gte=1, quantity__lte=MAX_QUANTITY),
                name="line_amount_is_quantity_times_price",
            ),
            models.UniqueConstraint(
                fields=["visit"],
                condition=models.Q(visit__isnull=False, voided=False),
                name="line_visit_invoiced_once",
            ),
        ]

    def __str__(self) -> str:
        return f"invoice line {self.pk}"


# The vault's brand codes (vault/cards.py), as people read them.
BRAND_NAMES = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
}


class PaymentMethod(TenantOwned):
    """A client's card saved in the vault: the vault's token and what may be shown of the card
    (brand, last four, expiry), never its number. Removed cards keep their row (their payments
    name them) with `removed_at` set; the vault has destroyed the number by then."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="payment_methods")
    # The vault's opaque token: sent back to the vault to charge, never shown on a page.
    vault_token = models.CharField(max_length=120)
    brand = models.CharField(max_length=40)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    # The vault's keyed fingerprint of the number: the same card twice in one business.
    fingerprint = models.CharField(max_length=64)
    # Who added or removed it is the audit trail's (payment_method.add / .remove).
    created_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "client"], name="paymentmethod_tenant_client"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "fingerprint"],
                condition=models.Q(removed_at__isnull=True),
                name="paymentmethod_card_once",
            ),
            models.UniqueConstraint(fields=["tenant", "vault_token"], name="paymentmethod_token"),
            models.CheckConstraint(
                condition=models.Q(exp_month__gte=1, exp_month__lte=12), name="paymentmethod_month"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand_name} ending {self.last4}"

    @property
    def brand_name(self) -> str:
        return BRAND_NAMES.get(self.brand, self.brand.capitalize())

    @property
    def label(self) -> str:
        """What a page or an email shows of the card."""
        return f"{self} expires {self.exp_month:02d}/{self.exp_year}"


class Payment(TenantOwned):
    """Money received against an invoice: cash or other recorded by hand, or a card charged
    through the vault (`payment_method`, `idempotency_key`, `vault_charge_id`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="payments")
    amount_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=10, choices=_choices(PaymentType))
    status = models.CharField(
        max_length=10, choices=_choices(PaymentStatus), default=PaymentStatus.SUCCEEDED
    )
    reference = models.CharField(max_length=REFERENCE_LENGTH, blank=True)
    # NULL, not "", for no charge: unique where it is set.
    vault_charge_id = models.CharField(max_length=120, null=True, blank=True)  # noqa: DJ001
    # A card payment: the card, and the key the vault charges it under (stored before the vault
    # is asked, so a retry sends the same key and never charges twice).
    # DO_NOTHING: a saved card is never deleted on its own (removing it keeps the row); it goes
    # only with its client or business, in the same transaction as these payments (the foreign
    # key is checked at commit), so the purge's plain cascade stays plain.
    payment_method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="payments"
    )
    idempotency_key = models.CharField(max_length=80, null=True, blank=True)  # noqa: DJ001
    # Why a card charge failed (the vault's message: no card data), or that it is not confirmed.
    message = models.CharField(max_length=200, blank=True)
    recorded_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "invoice"], name="payment_tenant_invoice")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="payment_positive"),
            models.CheckConstraint(condition=_valid("method", PaymentType), name="payment_method"),
            models.CheckConstraint(
                condition=_valid("status", PaymentStatus), name="payment_status"
            ),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="payment_idempotency_once",
            ),
            models.UniqueConstraint(
                fields=["tenant", "vault_charge_id"],
                condition=models.Q(vault_charge_id__isnull=False),
                name="payment_charge_once",
            ),
            models.CheckConstraint(
                condition=~models.Q(method=PaymentType.CARD)
                | models.Q(payment_method__isnull=False, idempotency_key__isnull=False),
                name="payment_card_has_key",
            ),
            # One card charge of an invoice waits for its answer at a time.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=models.Q(method=PaymentType.CARD, status=PaymentStatus.PENDING),
                name="payment_one_pending_card",
            ),
        ]

    def __str__(self) -> str:
        return f"payment {self.pk}"

    @property
    def is_card(self) -> bool:
        return self.method == PaymentType.CARD


class Refund(TenantOwned):
    """Money given back from a card payment through the vault, under a key stored first."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="refunds")
    amount_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=10, choices=_choices(RefundStatus), default=RefundStatus.PENDING
    )
    idempotency_key = models.CharField(max_length=80)
    vault_refund_id = models.CharField(max_length=120, null=True, blank=True)  # noqa: DJ001
    message = models.CharField(max_length=200, blank=True)
    # Who refunded is the audit trail's (payment.refund).
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "payment"], name="refund_tenant_payment")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="refund_positive"),
            models.CheckConstraint(condition=_valid("status", RefundStatus), name="refund_status"),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="refund_idempotency_once"
            ),
        ]

    def __str__(self) -> str:
        return f"refund {self.pk}"
