"""Forms of the payments pages. Amounts are typed in currency units (12.50) and handed to the
actions in minor units of the business's currency; choices come from access functions and the
actions check everything again."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet

from custodia.payments.models import (
    MAX_CREDITS,
    MAX_QUANTITY,
    MAX_VALIDITY_DAYS,
    NAME_LENGTH,
    REFERENCE_LENGTH,
    InvoiceStatus,
    PaymentType,
)
from custodia.payments.money import to_minor
from custodia.tenancy.paging import MAX_CURSOR_LENGTH
from custodia.web.clients.forms import AccessChoiceField

# The action's field name -> the form's, where the form takes an amount in currency units.
AMOUNT_FIELDS = {
    "price_minor": "price",
    "monthly_price_minor": "monthly_price",
    "unit_price_minor": "unit_price",
    "amount_minor": "amount",
}


def amount_field(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, min_value=Decimal(0), max_value=Decimal(100000), max_digits=9
    )


class AmountForm(forms.Form):
    """A form with amounts: `action_fields()` gives them in the currency's minor units."""

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        for name in AMOUNT_FIELDS.values():
            if name in self.fields:
                self.fields[name].help_text = f"In {currency}."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in AMOUNT_FIELDS.values():
            value = cleaned.get(name)
            if value is not None:
                try:
                    to_minor(value, self.currency)
                except ValueError as exc:
                    self.add_error(name, str(exc))
        return cleaned

    def action_fields(self) -> dict[str, Any]:
        """The cleaned data as the actions take it (amounts in minor units)."""
        fields = dict(self.cleaned_data)
        for action_name, name in AMOUNT_FIELDS.items():
            if name in fields:
                fields[action_name] = to_minor(fields.pop(name), self.currency)
        return fields


class PassTypeForm(AmountForm):
    name = forms.CharField(label="Pass name", max_length=NAME_LENGTH)
    credits = forms.IntegerField(label="Credits (visits)", min_value=1, max_value=MAX_CREDITS)
    price = amount_field("Price")
    validity_days = forms.IntegerField(
        label="Valid for (days)", min_value=1, max_value=MAX_VALIDITY_DAYS
    )


class PlanForm(AmountForm):
    name = forms.CharField(label="Plan name", max_length=NAME_LENGTH)
    monthly_price = amount_field("Monthly price")
    credits_per_month = forms.IntegerField(
        label="Credits included a month", min_value=0, max_value=MAX_CREDITS
    )


class PaymentSettingsForm(forms.Form):
    currency = forms.CharField(
        label="Currency (ISO 4217 code)", min_length=3, max_length=3, help_text="E.g. USD, EUR."
    )
    credit_back_on_cancel = forms.BooleanField(
        label="A cancelled visit gives its pass credit back", required=False
    )


class NamedChoiceField(AccessChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class SellPassForm(forms.Form):
    pass_type = NamedChoiceField(label="Pass", queryset=None, empty_label=None)

    def __init__(self, *args: Any, pass_types: QuerySet[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pass_type"].queryset = pass_types  # type: ignore[attr-defined]


class StartMembershipForm(forms.Form):
    """The plan; for those who may charge cards and a client with a saved card, optionally the
    card its renewals are charged to (autopay) and the client's agreement to it."""

    plan = NamedChoiceField(label="Membership plan", queryset=None, empty_label=None)

    def __init__(
        self, *args: Any, plans: QuerySet[Any], cards: Sequence[Any] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = plans  # type: ignore[attr-defined]
        if cards:
            self.fields["autopay_card"] = forms.ChoiceField(
                label="Autopay card",
                required=False,
                choices=[("", "No autopay: renewals wait for a payment")]
                + [(str(card.pk), str(card)) for card in cards],
            )
            self.fields["consent"] = forms.BooleanField(
                label=(
                    "The client agreed to be charged the plan's monthly price to this card "
                    "every month until they cancel."
                ),
                required=False,
                widget=forms.CheckboxInput(attrs={"value": "yes"}),
            )


class InvoiceLineForm(AmountForm):
    description = forms.CharField(label="Description", max_length=200)
    quantity = forms.IntegerField(label="Quantity", min_value=1, max_value=MAX_QUANTITY, initial=1)
    unit_price = amount_field("Unit price")


class PaymentForm(AmountForm):
    amount = amount_field("Amount received")
    method = forms.ChoiceField(
        label="Method",
        choices=[(PaymentType.CASH, "Cash"), (PaymentType.OTHER, "Other (bank transfer, …)")],
    )
    reference = forms.CharField(label="Reference", max_length=REFERENCE_LENGTH, required=False)


class CursorForm(forms.Form):
    """Which page of a list (tenancy/paging.py: an opaque cursor)."""

    cursor = forms.CharField(required=False, max_length=MAX_CURSOR_LENGTH, widget=forms.HiddenInput)


class InvoiceFilterForm(CursorForm):
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any status"), *((s.value, s.value.capitalize()) for s in InvoiceStatus)],
    )
