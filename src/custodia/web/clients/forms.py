"""Forms for client records; the actions re-check everything they are given."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from custodia.clients.access import NAME_SEARCH_MIN_LENGTH, search_problem
from custodia.clients.limits import LIMITS, SEARCH_MAX_LENGTH
from custodia.tenancy.models import Membership
from custodia.tenancy.paging import MAX_CURSOR_LENGTH


class ClientSearchForm(forms.Form):
    q = forms.CharField(
        label="Search clients",
        max_length=SEARCH_MAX_LENGTH,
        required=False,
        help_text=f"Any word of a name, or its beginning (at least {NAME_SEARCH_MIN_LENGTH}"
        " characters), an email address, or a phone number.",
    )
    # Which page: set by the previous and next links, never typed (tenancy/paging.py).
    cursor = forms.CharField(required=False, max_length=MAX_CURSOR_LENGTH, widget=forms.HiddenInput)

    def clean_q(self) -> str:
        query = str(self.cleaned_data["q"])
        problem = search_problem(query)
        if problem:
            raise forms.ValidationError(problem)
        return query


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


def _text(label: str, limit: str, *, rows: int = 0, secret: bool = False, **kw: Any) -> Any:
    widget: forms.Widget
    if rows:
        widget = forms.Textarea(attrs={"rows": rows})
    else:
        widget = forms.TextInput(attrs={"autocomplete": "off"} if secret else {})
    return forms.CharField(
        label=label, max_length=LIMITS[limit], required=False, widget=widget, **kw
    )


class PetForm(forms.Form):
    """A pet: name, kind, birthday, care; medication, the vet and notes are sealed at rest."""

    name = forms.CharField(label="Name", max_length=LIMITS["pet_name"])
    species = _text("Species", "species", help_text="For example: dog, cat, rabbit.")
    breed = _text("Breed", "breed")
    birthday = forms.DateField(
        label="Birthday",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="YYYY-MM-DD.",
    )
    feeding = _text("Feeding", "feeding", rows=3)
    medication = _text("Medication", "medication", rows=3)
    vet_name = _text("Vet", "vet_name")
    vet_phone = _text("Vet's phone", "vet_phone")
    notes = _text("Notes", "pet_notes", rows=3)


class HouseholdForm(forms.Form):
    """Household details; Wi-Fi and the emergency contact are shown to staff only near a visit."""

    keys_held = _text(
        "Keys held", "keys_held", help_text="For example: two front-door keys, tag 14."
    )
    parking = _text("Parking", "parking", rows=2)
    wifi_name = _text("Wi-Fi network", "wifi_name", secret=True)
    wifi_password = _text("Wi-Fi password", "wifi_password", secret=True)
    emergency_contact = _text(
        "Emergency contact", "emergency_contact", rows=2, help_text="A name and a phone number."
    )


class PetPhotoForm(forms.Form):
    """A pet's photo: a phone opens its camera (the action checks and re-encodes it)."""

    photo = forms.FileField(
        label="Photo",
        allow_empty_file=False,
        error_messages={
            "required": "Choose a photo to upload.",
            "empty": "The file is empty.",
        },
        widget=forms.FileInput(attrs={"accept": "image/*", "capture": "environment"}),
    )
