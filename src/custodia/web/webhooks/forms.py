"""The owner's webhook forms: the same fields the actions check (webhooks/actions.py)."""

from __future__ import annotations

from django import forms

from custodia.webhooks.models import DESCRIPTION_LENGTH, SUBSCRIBABLE, URL_LENGTH

EVENT_CHOICES = [(str(event), str(event)) for event in SUBSCRIBABLE]


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=URL_LENGTH,
        help_text="An https:// address on the public internet that accepts POST requests.",
        widget=forms.URLInput(attrs={"autocomplete": "off", "inputmode": "url"}),
    )
    description = forms.CharField(
        max_length=DESCRIPTION_LENGTH,
        required=False,
        help_text="What receives these events, for you and the other owners.",
    )
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )


class EndpointSettingsForm(EndpointForm):
    is_active = forms.BooleanField(label="On (events are sent)", required=False)


class ButtonForm(forms.Form):
    """Nothing to fill in: the button, and its CSRF token."""
