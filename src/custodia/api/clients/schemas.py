"""API input and output of clients, their home access and their assigned staff."""

from __future__ import annotations

import datetime as dt
import uuid

from ninja import Field, Schema
from pydantic import StrictStr

from custodia.api.core import NON_BLANK_TEXT, InputSchema, PatchSchema
from custodia.clients.models import Client, HomeAccess


class ClientIn(InputSchema):
    """A new client; everything but the name is optional, home-access fields included."""

    # A name of spaces only is refused (the schema says so, not just the action).
    name: StrictStr = Field(min_length=1, max_length=120, pattern=NON_BLANK_TEXT)
    email: StrictStr = Field("", max_length=254)
    phone: StrictStr = Field("", max_length=40)
    address: StrictStr = Field("", max_length=2000)
    notes: StrictStr = Field("", max_length=10000)
    instructions: StrictStr = Field("", max_length=4000)
    door_code: StrictStr = Field("", max_length=40)
    alarm_code: StrictStr = Field("", max_length=40)


class ClientPatch(PatchSchema):
    """Only the fields sent change; null is not a value (send "" to clear a field)."""

    name: StrictStr | None = Field(None, min_length=1, max_length=120, pattern=NON_BLANK_TEXT)
    email: StrictStr | None = Field(None, max_length=254)
    phone: StrictStr | None = Field(None, max_length=40)
    address: StrictStr | None = Field(None, max_length=2000)
    notes: StrictStr | None = Field(None, max_length=10000)
    instructions: StrictStr | None = Field(None, max_length=4000)
    door_code: StrictStr | None = Field(None, max_length=40)
    alarm_code: StrictStr | None = Field(None, max_length=40)


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
    def build(cls, client: Client, home_access: HomeAccess | None) -> ClientDetailOut:
        """The detail view of `client` with the home access the reader was allowed."""
        fields = ClientOut.from_orm(client).model_dump()
        access = HomeAccessOut.from_orm(home_access) if home_access is not None else None
        return cls(**fields, home_access=access)


class AssignStaffIn(InputSchema):
    """The membership (staff member, manager or owner) to assign to the client."""

    membership_id: uuid.UUID
