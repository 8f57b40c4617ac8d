"""API input and output of clients, their home access and their assigned staff."""

from __future__ import annotations

import datetime as dt
import uuid

from ninja import Field, Schema
from pydantic import StrictStr

from custodia.api.inputs import NON_BLANK_TEXT, InputSchema, PatchSchema
from custodia.api.pagination import PageOut
from custodia.clients.access import ClientView
from custodia.clients.limits import LIMITS


class ClientIn(InputSchema):
    """A new client; everything but the name is optional, home-access fields included."""

    # A name of spaces only is refused (the schema says so, not just the action).
    name: StrictStr = Field(min_length=1, max_length=LIMITS["name"], pattern=NON_BLANK_TEXT)
    email: StrictStr = Field("", max_length=LIMITS["email"])
    phone: StrictStr = Field("", max_length=LIMITS["phone"])
    address: StrictStr = Field("", max_length=LIMITS["address"])
    notes: StrictStr = Field("", max_length=LIMITS["notes"])
    instructions: StrictStr = Field("", max_length=LIMITS["instructions"])
    door_code: StrictStr = Field("", max_length=LIMITS["door_code"])
    alarm_code: StrictStr = Field("", max_length=LIMITS["alarm_code"])


class ClientPatch(PatchSchema):
    """Only the fields sent change; null is not a value (send "" to clear a field)."""

    name: StrictStr | None = Field(
        None, min_length=1, max_length=LIMITS["name"], pattern=NON_BLANK_TEXT
    )
    email: StrictStr | None = Field(None, max_length=LIMITS["email"])
    phone: StrictStr | None = Field(None, max_length=LIMITS["phone"])
    address: StrictStr | None = Field(None, max_length=LIMITS["address"])
    notes: StrictStr | None = Field(None, max_length=LIMITS["notes"])
    instructions: StrictStr | None = Field(None, max_length=LIMITS["instructions"])
    door_code: StrictStr | None = Field(None, max_length=LIMITS["door_code"])
    alarm_code: StrictStr | None = Field(None, max_length=LIMITS["alarm_code"])


class HomeAccessOut(Schema):
    instructions: str
    door_code: str
    alarm_code: str
    updated_at: dt.datetime


class ClientOut(Schema):
    id: uuid.UUID
    name: str
    email: str
    phone: str
    address: str
    notes: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ClientDetailOut(ClientOut):
    """One client; `home_access` is null unless the reader may see the codes right now."""

    home_access: HomeAccessOut | None

    @classmethod
    def build(cls, view: ClientView) -> ClientDetailOut:
        """The shape of a client as the access layer decided to show it (clients/access.py)."""
        fields = ClientOut.from_orm(view.client).model_dump()
        codes = view.home_access
        return cls(**fields, home_access=None if codes is None else HomeAccessOut.from_orm(codes))


class ClientPageOut(PageOut):
    """A page of clients."""

    items: list[ClientOut]


class AssignStaffIn(InputSchema):
    """The membership (staff member, manager or owner) to assign to the client."""

    membership_id: uuid.UUID
