"""Forms for client records; the actions re-check everything they are given."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from custodia.clients.limits import LIMITS, SEARCH_MAX_LENGTH
from custodia.tenancy.models import Membership
from custodia.tenancy.paging import MAX_CURSOR_LENGTH


class ClientSearchForm(forms.Form):
    q = forms.CharField(
        label="Search clients",
        max_length=SEARCH_MAX_LENGTH,
        required=False,
        help_text="A name (or its beginning), an email address, or a phone number.",
    )
    # Which page: set by the previous and next links, never typed (tenancy/paging.py).
    cursor = forms.CharField(required=False, max_length=MAX_CURSOR_LENGTH, widget=forms.HiddenInput)


class ClientForm(forms.Form):
    """A client's contact details and home-access instructions."""

    name = forms.CharField(label="Name", max_length=LIMITS["name"])
    email = forms.EmailField(label="Email", max_length=LIMITS["email"], required=False)
    phone = forms.CharField(label="Phone", max_length=LIMITS["phone"], required=False)
    address = forms.CharField(
        label="Address",
        max_length=LIMITS["address"],
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    notes = forms.CharField(
        label="Notes",
        max_length=LIMITS["notes"],
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    instructions = forms.CharField(
        label="Access instructions",
        max_length=LIMITS["instructions"],
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to assigned staff only around their visits.",
    )
    door_code = forms.CharField(
        label="Door code",
        max_length=LIMITS["door_code"],
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    alarm_code = forms.CharField(
        label="Alarm code",
        max_length=LIMITS["alarm_code"],
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class AccessChoiceField(forms.ModelChoiceField):
    """A choice among rows an access function returned; anything else, malformed ids included,
    is the same "not one of the choices"."""

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except forms.ValidationError:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            ) from None


class MemberChoiceField(AccessChoiceField):
    """Members listed by name; the queryset comes from an access function."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.user.display_name} ({obj.get_role_display()})"


class StaffChoiceForm(forms.Form):
    """Pick one staff member (assigning to a client, confirming a requested visit)."""

    staff = MemberChoiceField(
        label="Staff member",
        queryset=Membership.objects.none(),
        empty_label="Choose a staff member",
    )

    def __init__(
        self,
        *args: Any,
        staff: QuerySet[Membership],
        not_offered: str | None = None,
        **kwargs: Any,
    ) -> None:
        """`not_offered`: the error for someone not among `staff`, when it can say why."""
        super().__init__(*args, **kwargs)
        self.fields["staff"].queryset = staff  # type: ignore[attr-defined]
        if not_offered:
            self.fields["staff"].error_messages["invalid_choice"] = not_offered
