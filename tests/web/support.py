"""Helpers for page tests: HTTPS clients, and a snapshot of both businesses (nothing changed)."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpResponse

from custodia.accounts.models import ApiToken
from custodia.clients.models import Assignment, Client, HomeAccess, Household, Pet
from custodia.core.actor import Actor
from custodia.scheduling.models import Service, Visit
from custodia.tenancy.models import Business, Invitation, Membership
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix

MODELS = (
    Business,
    Membership,
    Invitation,
    Client,
    HomeAccess,
    Assignment,
    Service,
    Visit,
    ApiToken,
    Pet,
    Household,
)
ROLES = ("outsider", "owner", "manager", "staff", "other_staff", "client")


def anonymous() -> HttpsClient:
    """A logged-out browser."""
    return HttpsClient()


def logged_in(actor: Actor) -> HttpsClient:
    """A browser logged in as the actor, acting for the actor's business."""
    client = HttpsClient()
    client.act_as(actor)
    return client


def age_session(client: HttpsClient, seconds: float) -> None:
    """Move the session's authentication records `seconds` into the past (a stale step-up)."""
    session = client.session
    for record in session["account_authentication_methods"]:
        record["at"] -= seconds
    session.save()


def actor_for(matrix: TenantMatrix, role: str) -> Actor:
    """The actor playing `role`: a member of business A, or the outsider (owner of B)."""
    if role == "outsider":
        return matrix.outsider
    return getattr(matrix.a, "client_login" if role == "client" else role)


def snapshot(matrix: TenantMatrix) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every row of both businesses, each read by its own owner (ApiToken: the owner's own)."""
    state = {}
    for name, business in (("a", matrix.a), ("b", matrix.b)):
        act(business.owner)
        state[name] = {
            model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS
        }
    return state


def text(response: HttpResponse) -> str:
    """The page's text with tags removed and whitespace collapsed (for message checks)."""
    html = response.content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def title(response: HttpResponse) -> str:
    """The page's <title>."""
    match = re.search(r"<title>(.*?)</title>", response.content.decode(), re.S)
    return " ".join(match.group(1).split()) if match else ""
