"""Forms for signing up a business, managing its people and accepting an invitation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.http import HttpRequest

from custodia.accounts.models import User
from custodia.core.permissions import Role
from custodia.tenancy.actions import do_create_business
from custodia.tenancy.profile import (
    ACCESS_WINDOW_MAX_HOURS,
    REMINDER_MAX_HOURS,
    WEEKDAYS,
    DayHours,
    parse_opening_hours,
)
from custodia.tenancy.zones import time_zone_names

WORKING_ROLES = (Role.STAFF, Role.MANAGER, Role.OWNER)


class BusinessSignupForm(forms.Form):
    """Extra fields on allauth's signup form: the person's name and their business."""

    full_name = forms.CharField(label="Your name", max_length=120)
    business_name = forms.CharField(label="Business name", max_length=120)

    field_order = ["business_name", "full_name", "email", "password1", "password2"]

    def signup(self, request: HttpRequest, user: Any) -> None:
        """Called by allauth once the user exists: create their business with them as owner."""
        user.full_name = self.cleaned_data["full_name"].strip()
        user.save(update_fields=["full_name"])
        do_create_business(name=self.cleaned_data["business_name"], owner=user)


def _role_choices(allow_owner: bool) -> list[tuple[str, str]]:
    return [(r.value, r.label) for r in WORKING_ROLES if allow_owner or r != Role.OWNER]


class InviteForm(forms.Form):
    """Invite a person to work in the business."""

    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(label="Role", initial=Role.STAFF.value)

    def __init__(self, *args: Any, allow_owner: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(allow_owner)  # type: ignore[attr-defined]


class ClientInviteForm(forms.Form):
    """Invite a client to their portal."""

    email = forms.EmailField(label="Client's email address", max_length=254)


class RoleForm(forms.Form):
    """An owner changes what a member may do."""

    role = forms.ChoiceField(label="Role", choices=_role_choices(True))


class SecurityPolicyForm(forms.Form):
    """An owner's account-security settings for their business."""

    session_idle_minutes = forms.IntegerField(
        label="End idle sessions after (minutes)",
        min_value=5,
        max_value=120,
        help_text="5 to 120 minutes without activity, for everyone in this business.",
        error_messages={
            "min_value": "Sessions end after 5 to 120 idle minutes.",
            "max_value": "Sessions end after 5 to 120 idle minutes.",
            "invalid": "Enter a whole number of minutes.",
        },
    )
    mfa_required_owners = forms.BooleanField(
        label="Owners must use two-factor authentication", required=False
    )
    mfa_required_managers = forms.BooleanField(
        label="Managers must use two-factor authentication", required=False
    )
    mfa_required_staff = forms.BooleanField(
        label="Staff must use two-factor authentication", required=False
    )


class SwitchBusinessForm(forms.Form):
    business = forms.UUIDField(label="Business")


class AcceptInvitationForm(forms.Form):
    """A new login for the invited email address."""

    full_name = forms.CharField(label="Your name", max_length=120)
    password = forms.CharField(
        label="Choose a password",
        help_text="At least 12 characters; not a common password.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        strip=False,
        max_length=4096,
    )

    def __init__(self, *args: Any, email: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict[str, Any]:
        """Check the password the way the account will (so errors sit on the field)."""
        cleaned = super().clean() or {}
        password = cleaned.get("password")
        if password:
            candidate = User(email=self.email, full_name=cleaned.get("full_name", ""))
            try:
                validate_password(password, candidate)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class CloseBusinessForm(forms.Form):
    """The owner types the business's name to confirm closing it."""

    confirm = forms.CharField(label="Type the business's name to confirm", max_length=120)


class DeleteBusinessForm(forms.Form):
    """The owner types the business's slug to confirm its deletion."""

    confirm = forms.CharField(label="Type the business's short name to confirm", max_length=60)


def _hours_field(label: str, high: int, help_text: str) -> forms.IntegerField:
    message = f"A whole number of hours from 0 to {high}."
    return forms.IntegerField(
        label=label,
        min_value=0,
        max_value=high,
        help_text=help_text,
        error_messages={"min_value": message, "max_value": message, "invalid": message},
    )


def _time_field(label: str) -> forms.TimeField:
    return forms.TimeField(
        label=label,
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": "Enter a time such as 09:30."},
    )


class BusinessProfileForm(forms.Form):
    """An owner's settings for the business: name, zone, currency, hours, windows, reminders."""

    name = forms.CharField(label="Business name", max_length=120)
    time_zone = forms.ChoiceField(
        label="Time zone",
        help_text="Every time shown to and entered by your people and clients is in this zone.",
        error_messages={"invalid_choice": "Choose a time zone from the list."},
    )
    currency = forms.CharField(
        label="Currency",
        max_length=3,
        min_length=3,
        help_text=(
            "ISO 4217 code, such as USD, EUR or GBP. Invoices and passes already made keep their"
            " currency; prices in your catalog keep their numbers, so check them after a change."
        ),
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "size": 4}),
    )
    access_window_before_hours = _hours_field(
        "Staff see door codes from (hours before a visit)",
        ACCESS_WINDOW_MAX_HOURS,
        "0 to 168. Outside this window staff assigned to a visit cannot read its access notes.",
    )
    access_window_after_hours = _hours_field(
        "Staff see door codes until (hours after a visit)", ACCESS_WINDOW_MAX_HOURS, "0 to 168."
    )
    reminder_hours_before = _hours_field(
        "Remind clients of a visit (hours before)",
        REMINDER_MAX_HOURS,
        "0 to 168; 0 sends no reminder.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(name, name) for name in time_zone_names()]  # type: ignore[attr-defined]
        for number, day in enumerate(WEEKDAYS):
            self.fields[f"opens_{number}"] = _time_field(f"{day} opens")
            self.fields[f"closes_{number}"] = _time_field(f"{day} closes")

    @staticmethod
    def initial_for(business: Any) -> dict[str, Any]:
        """The form's initial values from the business."""
        initial = {
            field: getattr(business, field)
            for field in (
                "name",
                "time_zone",
                "currency",
                "access_window_before_hours",
                "access_window_after_hours",
                "reminder_hours_before",
            )
        }
        for number, day in enumerate(parse_opening_hours(business.opening_hours)):
            if day is not None:
                initial[f"opens_{number}"], initial[f"closes_{number}"] = day
        return initial

    def day_fields(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        """Each weekday's name with its opening and closing time fields, Monday first."""
        return [
            (day, self[f"opens_{number}"], self[f"closes_{number}"])
            for number, day in enumerate(WEEKDAYS)
        ]

    def main_fields(self) -> list[forms.BoundField]:
        """The fields other than the weekdays' times."""
        return [
            field
            for field in self.visible_fields()
            if not field.name.startswith(("opens_", "closes_"))
        ]

    def clean(self) -> dict[str, Any]:
        """A day with one of its two times is an error on that day; with neither it is closed."""
        cleaned = super().clean() or {}
        days: list[DayHours] = []
        for number, day in enumerate(WEEKDAYS):
            opens: dt.time | None = cleaned.get(f"opens_{number}")
            closes: dt.time | None = cleaned.get(f"closes_{number}")
            if self.has_error(f"opens_{number}") or self.has_error(f"closes_{number}"):
                days.append(None)
            elif (opens is None) != (closes is None):
                self.add_error(
                    f"closes_{number}" if closes is None else f"opens_{number}",
                    f"{day}: give both times, or leave both empty when closed.",
                )
                days.append(None)
            elif opens is None or closes is None:
                days.append(None)
            elif closes <= opens:
                self.add_error(f"closes_{number}", f"{day}: closing time must be after opening.")
                days.append(None)
            else:
                days.append((opens, closes))
        cleaned["opening_hours"] = days
        return cleaned

    def action_fields(self) -> dict[str, Any]:
        """What `do_update_business_profile` takes, from the valid form."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "time_zone": data["time_zone"],
            "currency": data["currency"],
            "opening_hours": data["opening_hours"],
            "access_window_before_hours": data["access_window_before_hours"],
            "access_window_after_hours": data["access_window_after_hours"],
            "reminder_hours_before": data["reminder_hours_before"],
        }
