"""A new business's owner sees its first steps on the dashboard, each ticked from real rows,
until all are done; nobody else sees them."""

from __future__ import annotations

import re

import pytest

from custodia.accounts.models import User
from custodia.clients.actions import do_create_client
from custodia.scheduling.actions import do_create_service
from custodia.tenancy.actions import do_create_business
from tests.acting import act
from tests.factories import UserFactory, add_member, authenticated
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db

HEADING = "Getting started"


def steps(html: str) -> list[tuple[str, bool]]:
    """Each step's label and whether it is ticked."""
    section = re.search(r'<ol class="checklist">(.*?)</ol>', html, re.S)
    assert section is not None
    items = re.findall(r"<li>(.*?)</li>", section.group(1), re.S)
    return [(re.sub(r"<[^>]+>|[✓○]|\(done\)", "", item).strip(), "✓" in item) for item in items]


def test_a_new_business_ticks_its_steps_as_they_are_done():
    owner_user: User = UserFactory()
    owner = authenticated(do_create_business(name="Fresh", owner=owner_user))
    browser = logged_in(owner)
    html = browser.get("/app/").content.decode()
    assert HEADING in html
    assert steps(html) == [
        ("Add the services you offer", False),
        ("Invite your staff", False),
        ("Add your first client", False),
        ("Schedule your first visit", False),
    ]
    assert 'href="/app/services/new/"' in html and 'href="/app/visits/new/"' in html
    act(owner)
    do_create_service(actor=owner, name="Walk", duration_minutes=30, price_cents=1000)
    act(owner)
    do_create_client(actor=owner, name="First Client")
    html = browser.get("/app/").content.decode()
    assert [done for _, done in steps(html)] == [True, False, True, False]
    add_member(owner, UserFactory(), "staff")
    html = browser.get("/app/").content.decode()
    assert [done for _, done in steps(html)] == [True, True, True, False]


def test_a_business_that_has_done_them_all_shows_none(matrix):
    assert HEADING not in logged_in(matrix.a.owner).get("/app/").content.decode()


@pytest.mark.parametrize("role", ["manager", "staff"])
def test_only_owners_see_them(role):
    owner = authenticated(do_create_business(name="Fresh", owner=UserFactory()))
    member = add_member(owner, UserFactory(), role)
    assert HEADING not in logged_in(member).get("/app/").content.decode()
