"""The owner's audit page filters, parsed into the access layer's `EventFilters`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from custodia.audit.access import EventFilters
from custodia.core.audit import AuditAction
from custodia.tenancy.models import Membership


class DateInput(forms.DateInput):
    input_type = "date"


class AuditFilterForm(forms.Form):
    """Person, client, action and a date range (in the business's zone); `before`/`after` are
    the page cursors."""

    person = forms.TypedChoiceField(
        label="Person", required=False, coerce=uuid.UUID, empty_value=None
    )
    client = forms.UUIDField(
        label="Client id",
        required=False,
        help_text="Events about this client record, read one by one or in a list.",
        error_messages={"invalid": "Enter a client id (a UUID, as in the client page's address)."},
    )
    action = forms.TypedChoiceField(
        label="Action",
        required=False,
        coerce=AuditAction,
        empty_value=None,
        choices=[("", "Any action"), *((a.value, a.label) for a in AuditAction)],
    )
    since = forms.DateField(label="From", required=False, widget=DateInput)
    until = forms.DateField(label="To (inclusive)", required=False, widget=DateInput)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    # The page's cursor fields: not filters, and not carried into export links.
    CURSORS = ("before", "after")

    def __init__(self, *args: Any, members: QuerySet[Membership], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["person"].choices = [  # type: ignore[attr-defined]
            ("", "Anyone"),
            *((str(m.user_id), f"{m.user.display_name} ({m.get_role_display()})") for m in members),
        ]

    def clean_until(self) -> dt.date | None:
        until: dt.date | None = self.cleaned_data["until"]
        if until == dt.date.max:
            # Its end (the next midnight) does not exist.
            raise forms.ValidationError("Choose an earlier date.")
        return until

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("before") and cleaned.get("after"):
            raise forms.ValidationError("Ask for older or for newer events, not both.")
        return cleaned

    def filters(self) -> EventFilters:
        """The valid form's filters; dates become the business's day bounds, `until` including
        its day."""
        data = self.cleaned_data
        return EventFilters(
            person=data["person"],
            client=data["client"],
            action=data["action"],
            since=_day_start(data["since"]),
            until=_day_start(data["until"] + dt.timedelta(days=1) if data["until"] else None),
        )


def _day_start(day: dt.date | None) -> dt.datetime | None:
    # Midnight in the business's zone (acting as a member made it the current one).
    return None if day is None else timezone.make_aware(dt.datetime.combine(day, dt.time.min))
