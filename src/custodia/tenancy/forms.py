"""Forms for signing up a business and managing its people."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest

from custodia.tenancy.permissions import Role


class BusinessSignupForm(forms.Form):
    """Extra fields on allauth's signup form: the person's name and their business."""

    full_name = forms.CharField(label="Your name", max_length=120)
    business_name = forms.CharField(label="Business name", max_length=120)

    field_order = ["business_name", "full_name", "email", "password1", "password2"]

    def signup(self, request: HttpRequest, user: Any) -> None:
        """Called by allauth once the user exists: create their business with them as owner."""
        from custodia.tenancy.actions import do_create_business

        user.full_name = self.cleaned_data["full_name"].strip()
        user.save(update_fields=["full_name"])
        do_create_business(name=self.cleaned_data["business_name"], owner=user)


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(
        choices=[(r.value, r.label) for r in (Role.STAFF, Role.MANAGER, Role.OWNER)],
        initial=Role.STAFF.value,
    )


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=120)
    password = forms.CharField(
        label="Choose a password (at least 12 characters)",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        strip=False,
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(r.value, r.label) for r in (Role.STAFF, Role.MANAGER, Role.OWNER)])
