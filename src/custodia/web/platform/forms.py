"""The forms of the vulnerability report page and the operator console."""

from __future__ import annotations

from django import forms

from custodia.platform.models import DETAILS_MAX, RESPONSE_MAX, SUMMARY_MAX, ReportStatus


class ReportForm(forms.Form):
    """A vulnerability report from anyone; the address is optional (needed for an answer)."""

    summary = forms.CharField(
        label="Summary", max_length=SUMMARY_MAX, help_text="One line: what is vulnerable."
    )
    details = forms.CharField(
        label="Details",
        max_length=DETAILS_MAX,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="How to reproduce it, and what an attacker could do. No customer data, please.",
    )
    reporter_email = forms.EmailField(
        label="Your email",
        required=False,
        max_length=254,
        help_text="We acknowledge the report at once and answer within 24 hours at this address.",
    )


class ResponseForm(forms.Form):
    response = forms.CharField(
        label="First response",
        max_length=RESPONSE_MAX,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Mailed to the reporter when they gave an address; stops the 24-hour clock.",
    )


class StatusForm(forms.Form):
    status = forms.ChoiceField(label="Status", choices=ReportStatus.choices)
