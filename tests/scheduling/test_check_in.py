"""Check-in and check-out: the assigned staff member records them, once each, in order;
managers and the client see the times; the trail has both."""

from __future__ import annotations

from custodia.core.audit import AuditAction
from custodia.scheduling.access import access_visit_by_id
from custodia.scheduling.actions import do_update_visit
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.audit.support import chain_events
from tests.web.support import logged_in, text


def test_the_assigned_staff_member_checks_in_and_out(matrix):
    a = matrix.a
    visit_url = f"/app/visits/{a.visit.pk}/"
    staff = logged_in(a.staff)
    assert "Check in" in text(staff.get(visit_url))
    # Out of order: check-out before check-in is refused with a message.
    refused = staff.post(visit_url + "check-out/", follow=True)
    assert "Check in before you check out." in text(refused)
    assert staff.post(visit_url + "check-in/").status_code == 302
    again = staff.post(visit_url + "check-in/", follow=True)
    assert "You checked in at this visit already." in text(again)
    back = staff.post(visit_url + "check-out/", {"back": "today"})
    assert back.status_code == 302 and back["Location"] == "/app/today/"
    act(a.owner)
    visit = access_visit_by_id(a.owner, a.visit.pk, intent=Intent.CHANGE)
    assert visit.checked_in_at is not None and visit.checked_out_at >= visit.checked_in_at
    for who in (a.manager, a.client_login):
        page = text(logged_in(who).get(visit_url))
        assert "Checked in" in page and "Checked out" in page
    act(a.owner)
    actions = [e["action"] for e in chain_events(a.owner)]
    assert actions.count(AuditAction.VISIT_CHECK_IN) == 1
    assert actions.count(AuditAction.VISIT_CHECK_OUT) == 1


def test_nobody_else_checks_in(matrix):
    a = matrix.a
    url = f"/app/visits/{a.visit.pk}/check-in/"
    # Out of reach: not found.
    assert logged_in(a.other_staff).post(url).status_code == 404
    assert logged_in(matrix.outsider).post(url).status_code == 404
    assert logged_in(a.owner).post(f"/app/visits/{matrix.b.visit.pk}/check-in/").status_code == 404
    # A client never checks in; a manager is not the one visiting.
    assert logged_in(a.client_login).post(url).status_code == 403
    assert logged_in(a.manager).post(url).status_code == 403
    act(a.owner)
    visit = access_visit_by_id(a.owner, a.visit.pk, intent=Intent.CHANGE)
    assert visit.checked_in_at is None


def test_a_cancelled_visit_is_not_checked_in(matrix):
    a = matrix.a
    act(a.owner)
    do_update_visit(a.visit, actor=a.owner, status="cancelled")
    response = logged_in(a.staff).post(f"/app/visits/{a.visit.pk}/check-in/", follow=True)
    assert "Only a scheduled visit can be checked in or out." in text(response)


def test_staff_cannot_set_check_in_times_of_anothers_visit_in_the_database(matrix):
    """The staff guard trigger lets staff write the times, and RLS only on their own visits."""
    from django.db import transaction
    from django.db.utils import DatabaseError
    from django.utils import timezone

    from custodia.scheduling.models import Visit

    a = matrix.a
    act(a.staff)
    with transaction.atomic():
        assert Visit.objects.filter(pk=a.visit.pk).update(checked_in_at=timezone.now()) == 1
    act(a.other_staff)
    assert Visit.objects.filter(pk=a.visit.pk).update(checked_in_at=timezone.now()) == 0
    act(a.staff)
    try:
        with transaction.atomic():
            Visit.objects.filter(pk=a.visit.pk).update(ends_at=timezone.now())
    except DatabaseError:
        pass
    else:
        raise AssertionError("staff moved a visit's time")
