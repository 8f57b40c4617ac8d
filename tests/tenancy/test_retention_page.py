"""The retention page: owners see the policy that is enforced; no one else reaches it."""

from __future__ import annotations

import pytest

from custodia.lifecycle import retention
from tests.web.support import actor_for, logged_in, text

URL = "/app/business/retention/"

pytestmark = pytest.mark.django_db


def test_the_owner_sees_every_rule_of_the_enforced_policy(matrix, settings):
    settings.BACKUP_RETENTION_DAYS = 200
    page = logged_in(matrix.a.owner).get(URL)
    assert page.status_code == 200
    shown = text(page)
    for rule in retention.policy():
        assert rule.what in shown
    assert "200 days, then deleted" in shown  # the installation's setting, not a fixed claim


@pytest.mark.parametrize("role", ["manager", "staff", "client"])
def test_lesser_roles_are_refused(matrix, role):
    browser = logged_in(actor_for(matrix, role))
    assert browser.get(URL).status_code == 403
    assert browser.post(URL).status_code in (403, 405)


def test_signed_out_visitors_are_sent_to_sign_in(web):
    answer = web.get(URL)
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]


def test_the_security_page_states_the_same_policy(web):
    page = " ".join(web.get("/security/").content.decode().split())
    for rule in retention.policy():
        assert rule.kept[0].upper() + rule.kept[1:40] in page
