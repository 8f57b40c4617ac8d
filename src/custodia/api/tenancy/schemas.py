"""API input and output of members and invitations."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from ninja import Field, Schema
from pydantic import StrictBool, StrictStr, field_validator

from custodia.api.inputs import InputSchema, PatchSchema
from custodia.api.pagination import PageOut
from custodia.tenancy.models import Membership

# Client logins are invited from the client's record, not here.
StaffRole = Literal["owner", "manager", "staff"]


class MemberOut(Schema):
    id: uuid.UUID
    email: str
    full_name: str
    role: str
    is_active: bool
    created_at: dt.datetime

    @staticmethod
    def resolve_email(member: Membership) -> str:
        return member.user.email

    @staticmethod
    def resolve_full_name(member: Membership) -> str:
        return member.user.full_name


class MemberPageOut(PageOut):
    """A page of members."""

    items: list[MemberOut]


class InvitationIn(InputSchema):
    email: StrictStr = Field(max_length=254)
    role: StaffRole

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        try:
            validate_email(value.strip())
        except ValidationError:
            raise ValueError("Enter a valid email address.") from None
        return value


class InvitationOut(Schema):
    """An invitation as the inviter sees it: the link's secret is only ever in the email."""

    id: uuid.UUID
    email: str
    role: str
    created_at: dt.datetime
    expires_at: dt.datetime


class MemberPatch(PatchSchema):
    """Change a member's role (owners only), or deactivate them with `is_active: false`."""

    role: StaffRole | None = None
    is_active: StrictBool | None = None
