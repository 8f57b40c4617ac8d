"""Forms for signing up a business, managing its people and accepting an invitation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.http import HttpRequest

from custodia.accounts.models import User
from custodia.core.permissions import Role
from custodia.tenancy.actions import do_create_business

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
