"""Forms for services and visits; choices come from access functions, the actions re-check."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import QuerySet

from custodia.clients.models import Client
from custodia.scheduling.actions import EARLIEST_VISIT, LATEST_VISIT, OUT_OF_RANGE
from custodia.scheduling.models import Service, VisitStatus
from custodia.scheduling.series import (
    MAX_OCCURRENCES,
    WEEKDAY_NAMES,
    Frequency,
    Repeat,
    Scope,
)
from custodia.tenancy.models import Membership
from custodia.web.clients.forms import AccessChoiceField, MemberChoiceField

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
NOT_ASSIGNED = "Choose a staff member assigned to this client (assign them on the client's page)."


def datetime_field(
    label: str, *, required: bool = True, help_text: str = ""
) -> forms.DateTimeField:
    """A date and time picker (the browser's own), read in the current time zone."""
    return forms.DateTimeField(
        label=label,
        required=required,
        help_text=help_text,
        input_formats=[DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMAT),
        error_messages={"invalid": "Enter a date and time, e.g. 2030-05-17 14:30."},
    )


class ClientChoiceField(AccessChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class ServiceChoiceField(AccessChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.duration_minutes} min)"


class ServiceForm(forms.Form):
    """What the business sells: a name, how long it takes, what it costs."""

    name = forms.CharField(label="Service name", max_length=120)
    duration_minutes = forms.IntegerField(label="Duration (minutes)", min_value=5, max_value=1440)
    price = forms.DecimalField(
        label="Price",
        min_value=Decimal(0),
        max_value=Decimal(100000),
        decimal_places=2,
        max_digits=8,
    )

    def action_fields(self) -> dict[str, Any]:
        """The cleaned data as the service actions take it (price in cents)."""
        return {
            "name": self.cleaned_data["name"],
            "duration_minutes": self.cleaned_data["duration_minutes"],
            "price_cents": int(self.cleaned_data["price"] * 100),
        }


class VisitForm(forms.Form):
    """A manager schedules a visit."""

    client = ClientChoiceField(
        label="Client", queryset=Client.objects.none(), empty_label="Choose a client"
    )
    staff = MemberChoiceField(
        label="Staff member",
        queryset=Membership.objects.none(),
        required=False,
        empty_label="Nobody yet",
        help_text="Only staff assigned to the client are listed.",
        error_messages={"invalid_choice": NOT_ASSIGNED},
    )
    service = ServiceChoiceField(
        label="Service", queryset=Service.objects.none(), required=False, empty_label="No service"
    )
    starts_at = datetime_field("Start")
    ends_at = datetime_field(
        "End", required=False, help_text="Leave empty to use the service's duration."
    )

    repeat = forms.ChoiceField(
        label="Repeat",
        choices=[
            ("", "Does not repeat"),
            (Frequency.DAILY.value, "Every day"),
            (Frequency.WEEKLY.value, "Every week"),
        ],
        required=False,
    )
    every = forms.IntegerField(
        label="Every how many days or weeks", min_value=1, max_value=52, initial=1, required=False
    )
    on_days = forms.TypedMultipleChoiceField(
        label="On (a weekly series)",
        choices=list(enumerate(WEEKDAY_NAMES)),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave empty for the first visit's day of the week.",
    )
    until = forms.DateField(
        label="Until", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    times = forms.IntegerField(
        label="Or this many visits", min_value=1, max_value=MAX_OCCURRENCES, required=False
    )

    REPEAT_FIELDS = ("repeat", "every", "on_days", "until", "times")

    def __init__(
        self,
        *args: Any,
        clients: QuerySet[Client],
        staff: QuerySet[Membership],
        services: QuerySet[Service],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = clients  # type: ignore[attr-defined]
        self.fields["staff"].queryset = staff  # type: ignore[attr-defined]
        self.fields["service"].queryset = services  # type: ignore[attr-defined]

    def visit(self) -> dict[str, Any]:
        """The cleaned data of the visit itself (what `do_create_visit` takes)."""
        return {k: v for k, v in self.cleaned_data.items() if k not in self.REPEAT_FIELDS}

    def repeating(self) -> Repeat | None:
        """How the visit repeats, or None for a single visit."""
        data = self.cleaned_data
        if not data.get("repeat"):
            return None
        return Repeat(
            frequency=Frequency(data["repeat"]),
            interval=data.get("every") or 1,
            weekdays=tuple(data.get("on_days") or ()),
            until=data.get("until"),
            count=data.get("times"),
        )


class SeriesChangeForm(forms.Form):
    """A manager changes a series from one visit on: its time of day, length, staff, service."""

    KEEP = "keep"
    NONE = "none"

    scope = forms.ChoiceField(
        label="Change",
        choices=[
            (Scope.FOLLOWING.value, "This visit and the ones after it"),
            (Scope.ALL.value, "Every visit of the series not yet done"),
        ],
        widget=forms.RadioSelect,
        initial=Scope.FOLLOWING.value,
    )
    start_time = forms.TimeField(
        label="New start time", required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    minutes = forms.IntegerField(
        label="New length (minutes)", min_value=5, max_value=1440, required=False
    )
    staff = forms.ChoiceField(label="Staff member")
    service = forms.ChoiceField(label="Service")

    def __init__(
        self,
        *args: Any,
        staff: QuerySet[Membership],
        services: QuerySet[Service],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._staff = {str(member.pk): member for member in staff.select_related("user")}
        self._services = {str(service.pk): service for service in services}
        self.fields["staff"].choices = [  # type: ignore[attr-defined]
            (self.KEEP, "Keep as it is"),
            (self.NONE, "Nobody yet"),
            *((key, m.user.display_name) for key, m in self._staff.items()),
        ]
        self.fields["staff"].error_messages["invalid_choice"] = NOT_ASSIGNED
        self.fields["service"].choices = [  # type: ignore[attr-defined]
            (self.KEEP, "Keep as it is"),
            (self.NONE, "No service"),
            *((key, s.name) for key, s in self._services.items()),
        ]

    def changes(self) -> dict[str, Any]:
        """The keyword arguments of `do_change_following`."""
        data = self.cleaned_data
        staff, service = data["staff"], data["service"]
        return {
            "scope": Scope(data["scope"]),
            "start_time": data.get("start_time"),
            "minutes": data.get("minutes"),
            "change_staff": staff != self.KEEP,
            "staff": self._staff.get(staff),
            "change_service": service != self.KEEP,
            "service": self._services.get(service),
        }


class VisitClientForm(forms.Form):
    """A new visit's first step without JavaScript: whose visit (the staff offered next are the
    client's own), keeping a start time a calendar link gave."""

    client = ClientChoiceField(
        label="Client", queryset=Client.objects.none(), empty_label="Choose a client"
    )
    starts_at = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, clients: QuerySet[Client], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = clients  # type: ignore[attr-defined]


class VisitEditForm(forms.Form):
    """A manager moves, reassigns or changes a visit (status and report have their own form)."""

    starts_at = datetime_field("Start")
    ends_at = datetime_field("End")
    staff = MemberChoiceField(
        label="Staff member",
        queryset=Membership.objects.none(),
        required=False,
        empty_label="Nobody yet",
        help_text="Only staff assigned to the client are listed.",
        error_messages={"invalid_choice": NOT_ASSIGNED},
    )
    service = ServiceChoiceField(
        label="Service", queryset=Service.objects.none(), required=False, empty_label="No service"
    )

    def __init__(
        self,
        *args: Any,
        staff: QuerySet[Membership],
        services: QuerySet[Service],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["staff"].queryset = staff  # type: ignore[attr-defined]
        self.fields["service"].queryset = services  # type: ignore[attr-defined]


class VisitRequestForm(forms.Form):
    """A client asks for a visit."""

    service = ServiceChoiceField(
        label="Service", queryset=Service.objects.none(), required=False, empty_label="Not sure yet"
    )
    starts_at = datetime_field("Preferred start")
    note = forms.CharField(
        label="Note for the business",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, services: QuerySet[Service], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = services  # type: ignore[attr-defined]


class VisitUpdateForm(forms.Form):
    """Status and report: what staff may change on their own visits."""

    status = forms.ChoiceField(label="Status")
    report = forms.CharField(
        label="Visit report",
        max_length=10000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
    )

    def __init__(self, *args: Any, statuses: list[VisitStatus], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [  # type: ignore[attr-defined]
            (s.value, s.value.capitalize()) for s in statuses
        ]


class WeekForm(forms.Form):
    # Bounded like visits: the calendar's links to the weeks around 9999-12-31 or 0001-01-01
    # overflowed the date type (a 500).
    week = forms.DateField(
        label="Week of",
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Give the week as YYYY-MM-DD."},
        validators=[
            MinValueValidator(EARLIEST_VISIT.date(), message=OUT_OF_RANGE),
            MaxValueValidator(LATEST_VISIT.date() - dt.timedelta(days=1), message=OUT_OF_RANGE),
        ],
    )


NOTICE_CHOICE_LABELS = {
    "reminders": "A reminder before each visit",
    "changes": "When a visit is moved, given to someone else or cancelled",
    "reports": "When the report of a visit is written",
    "requests": "When a client requests a visit",
}


class NoticeChoicesForm(forms.Form):
    """The emails a member chooses to receive: a box for each choice their role has."""

    def __init__(self, *args: Any, names: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in names:
            self.fields[name] = forms.BooleanField(label=NOTICE_CHOICE_LABELS[name], required=False)


class VisitPhotoForm(forms.Form):
    """A photo for a visit: a phone opens its camera (the action checks and re-encodes it)."""

    photo = forms.FileField(
        label="Photo",
        allow_empty_file=False,
        error_messages={
            "required": "Choose a photo to upload.",
            "empty": "The file is empty.",
        },
        widget=forms.FileInput(attrs={"accept": "image/*", "capture": "environment"}),
    )


class CalendarStaffForm(forms.Form):
    """The calendar's staff filter: everyone's visits, or one staff member's."""

    staff = forms.ChoiceField(label="Staff", required=False)

    def __init__(self, *args: Any, staff: QuerySet[Membership], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        members = staff.select_related("user")
        self.fields["staff"].choices = [("", "All staff")] + [  # type: ignore[attr-defined]
            (str(member.pk), member.user.display_name) for member in members
        ]
