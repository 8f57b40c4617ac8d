"""A closed business is read-only at every door: web forms, the API, console commands and a
hand-made connection of the app's database role with the context set all meet the database's
refusal, answered with a clear 409 (or a CommandError); reads keep working, and every page says
until when it stays."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from custodia.core.actor import Actor
from custodia.core.closed import CLOSED_SQLSTATE, BusinessClosed
from custodia.tenancy.closing import do_close_business
from custodia.tenancy.models import Business
from custodia.tenancy.zones import zone_for
from tests.acting import act
from tests.api.conftest import send
from tests.factories import TenantMatrix
from tests.web.support import age_session, logged_in, snapshot, text

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

# Every table with a tenant_id that still takes writes while its business is closed, and why.
OPEN_WHILE_CLOSED = {
    "audit_auditevent": "reads of a closed business are still recorded",
    "audit_checkpoint": "the trail's signed checkpoints",
    "audit_digestsent": "the owners' weekly security digests: a closed business's trail too",
    "accounts_apitoken": "revoking a token and its last-use stamp (new ones are refused)",
    "accounts_calendarfeed": "revoking a calendar feed (new ones are refused)",
    "custodia_db_context": "describes live transactions, not business data",
    "jobs_job": "a job's status and progress: an export of a closed business must run",
    "export_export": "an export of a closed business is made, stored and downloaded",
    "detection_alert": "a closed business's data is still read and exported: its alerts are raised",
}
GUARDED = {
    "tenancy_membership",
    "tenancy_invitation",
    "clients_client",
    "clients_homeaccess",
    "clients_assignment",
    "clients_erasurerequest",
    "clients_pet",
    "clients_household",
    "clients_clientnamepart",
    "scheduling_service",
    "scheduling_visit",
    "scheduling_notice",
    "scheduling_noticechoice",
    "scheduling_visitphoto",
    "payments_passtype",
    "payments_membershipplan",
    "payments_clientpass",
    "payments_paymentmethod",
    "payments_refund",
    "payments_credituse",
    "payments_clientmembership",
    "payments_invoicecounter",
    "payments_invoice",
    "payments_invoiceline",
    "payments_payment",
    "wallet_walletpass",
    "wallet_walletregistration",
    "webhooks_endpoint",
    "webhooks_delivery",
    "transparency_publication",
}


def close(actor: Actor) -> Business:
    act(actor)
    business = Business.objects.get(pk=actor.tenant_id)
    return do_close_business(business, actor=actor, confirm_name=business.name)


def test_every_table_of_business_data_is_guarded(db: None) -> None:
    """A new tenant-owned table must be guarded, or listed above with its reason."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        )
        tables = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_proc p ON p.oid = t.tgfoid WHERE p.proname = 'custodia_refuse_closed_write'"
        )
        triggered = {row[0] for row in cursor.fetchall()}
    assert tables - set(OPEN_WHILE_CLOSED) == GUARDED
    assert triggered == GUARDED | {"accounts_apitoken", "accounts_calendarfeed"}


WEB_WRITES = [
    ("owner", "/app/clients/new/", {"name": "New", "email": "new@example.test"}),
    ("owner", "/app/clients/{client}/edit/", {"name": "Changed"}),
    ("owner", "/app/clients/{client}/delete/", {}),
    ("manager", "/app/clients/{other_client}/assign/", {"staff": "{staff}"}),
    ("manager", "/app/services/new/", {"name": "New", "duration_minutes": "30", "price": "1"}),
    ("manager", "/app/staff/invite/", {"email": "new@example.test", "role": "staff"}),
    ("owner", "/app/staff/{staff}/deactivate/", {}),
    ("owner", "/app/business/security/", {"session_idle_minutes": "20"}),
    ("staff", "/app/visits/{visit}/update/", {"status": "completed", "report": "All fine"}),
    ("client_login", "/app/portal/request/", {"starts_at": "2030-01-01T10:00", "note": "Hi"}),
]


def fill(template: str, matrix: TenantMatrix) -> str:
    a = matrix.a
    return template.format(
        client=a.client.pk,
        other_client=a.other_client.pk,
        staff=a.staff.membership.pk,
        visit=a.visit.pk,
    )


@pytest.mark.parametrize(("role", "url", "data"), WEB_WRITES)
def test_every_web_form_is_refused_with_a_clear_409(
    matrix: TenantMatrix, role: str, url: str, data: dict[str, str]
) -> None:
    a = matrix.a
    business = close(a.owner)
    browser = logged_in(getattr(a, role))
    before = snapshot(matrix)
    answer = browser.post(fill(url, matrix), {k: fill(v, matrix) for k, v in data.items()})
    assert answer.status_code == 409, (url, answer.status_code, text(answer)[:300])
    page = text(answer)
    assert "This business is closed until" in page
    assert f"{business.purge_after:%Y-%m-%d}" in page
    assert "An owner can reopen it." in page
    assert snapshot(matrix) == before


def test_pages_still_read_and_show_the_purge_date_on_every_page(matrix: TenantMatrix) -> None:
    a = matrix.a
    business = close(a.owner)
    purge = business.purge_after.astimezone(zone_for(business))  # the business's zone
    date = f"{purge:%a} {purge.day} {purge:%b %Y}"
    for actor, urls in (
        (a.owner, ["/app/", "/app/clients/", f"/app/clients/{a.client.pk}/", "/app/audit/"]),
        (a.staff, ["/app/today/", f"/app/clients/{a.client.pk}/"]),
        (a.client_login, ["/app/portal/"]),
    ):
        browser = logged_in(actor)
        for url in urls:
            page = browser.get(url)
            assert page.status_code == 200, url
            assert "is closed." in text(page) and date in text(page), url
    # Nothing shows it for another business.
    assert "is closed." not in text(logged_in(matrix.b.owner).get("/app/"))


def test_the_api_refuses_writes_with_409_and_still_reads(matrix: TenantMatrix) -> None:
    from custodia.accounts.actions import do_create_api_token
    from tests.conftest import HttpsClient

    a = matrix.a
    act(a.owner)
    _, plain = do_create_api_token(actor=a.owner, name="export")
    close(a.owner)
    api = HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}")
    before = snapshot(matrix)
    for method, path, body in (
        ("POST", "/clients", {"name": "New"}),
        ("PATCH", f"/clients/{a.client.pk}", {"name": "Changed"}),
        ("DELETE", f"/clients/{a.client.pk}", None),
        ("POST", "/services", {"name": "Walk", "duration_minutes": 30, "price_cents": 100}),
    ):
        answer = send(api, method, path, body)
        assert answer.status_code == 409, (path, answer.content)
        assert answer.json()["code"] == "closed"
        assert "An owner can reopen it." in answer.json()["detail"]
    assert snapshot(matrix) == before
    listed = send(api, "GET", "/clients")
    assert listed.status_code == 200 and len(listed.json()["items"]) == 2


def test_a_console_command_is_refused_with_a_command_error(matrix: TenantMatrix) -> None:
    a = matrix.a
    close(a.owner)
    slug = a.owner.business.slug
    with pytest.raises(CommandError, match="closed until"):
        call_command("token", "create", "--email", a.owner.user.email, "--business", slug)


RAW_WRITES = [
    "INSERT INTO scheduling_service (id, tenant_id, name, duration_minutes, price_cents,"
    " is_active, created_at) VALUES (gen_random_uuid(), %(tenant)s, 'x', 30, 1, true, now())",
    "UPDATE scheduling_service SET name = 'x' WHERE tenant_id = %(tenant)s",
    "DELETE FROM clients_assignment WHERE tenant_id = %(tenant)s",
    "UPDATE clients_client SET name = 'x' WHERE tenant_id = %(tenant)s",
    "DELETE FROM scheduling_visit WHERE tenant_id = %(tenant)s",
    "UPDATE tenancy_membership SET is_active = false WHERE tenant_id = %(tenant)s",
    "DELETE FROM tenancy_membership WHERE tenant_id = %(tenant)s AND role = 'staff'",
    "UPDATE tenancy_business SET name = 'x' WHERE id = %(tenant)s",
    "UPDATE tenancy_business SET purge_after = purge_after + interval '1 year'"
    " WHERE id = %(tenant)s",
    "INSERT INTO accounts_apitoken (id, tenant_id, user_id, membership_id, name, prefix, digest,"
    " scopes, created_at, expires_at) VALUES (gen_random_uuid(), %(tenant)s, %(user)s,"
    " %(membership)s, 'x', '0123456789ab', 'x', '{}', now(), now() + interval '1 day')",
]


@pytest.mark.parametrize("statement", RAW_WRITES)
def test_a_hand_made_write_with_the_context_set_is_refused(
    matrix: TenantMatrix, statement: str
) -> None:
    """Plain SQL on the app role's session, no Django in between, with the verified context of
    the business's owner: the database itself refuses."""
    a = matrix.a
    close(a.owner)
    before = snapshot(matrix)
    raw = connection.connection  # the app role's psycopg connection, inside the test's transaction
    params = {
        "tenant": str(a.owner.tenant_id),
        "user": str(a.owner.user.pk),
        "membership": str(a.owner.membership.pk),
    }
    with transaction.atomic(), raw.cursor() as cursor:
        cursor.execute(
            "SELECT custodia_set_context(%s, %s, %s, %s, NULL, 'owner', NULL)",
            [settings.DB_CONTEXT_KEY, params["tenant"], params["user"], params["membership"]],
        )
        cursor.execute("SAVEPOINT attempt")
        with pytest.raises(psycopg.Error) as refused:
            cursor.execute(statement, params)
        assert refused.value.sqlstate == CLOSED_SQLSTATE
        assert "closed until" in str(refused.value)
        cursor.execute("ROLLBACK TO SAVEPOINT attempt")
    assert snapshot(matrix) == before


def test_the_django_cursor_raises_business_closed(matrix: TenantMatrix) -> None:
    a = matrix.a
    business = close(a.owner)
    act(a.manager)
    with pytest.raises(BusinessClosed) as refused, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE clients_client SET name = 'x' WHERE tenant_id = %s", [business.pk]
            )
    assert refused.value.purge_after is not None
    assert abs(refused.value.purge_after - business.purge_after) < dt.timedelta(seconds=1)


# --- The closing page ---------------------------------------------------------------------------

PAGE = "/app/business/delete/"


def test_the_owner_closes_and_reopens_from_the_page(matrix: TenantMatrix) -> None:
    a = matrix.a
    browser = logged_in(a.owner)
    page = browser.get(PAGE)
    assert page.status_code == 200 and "Close this business" in text(page)
    wrong = browser.post("/app/business/close/", {"close-confirm": "alpha"})
    assert wrong.status_code == 400 and "exactly as shown" in text(wrong)
    done = browser.post("/app/business/close/", {"close-confirm": "Alpha"})
    assert done.status_code == 302
    act(a.owner)
    assert Business.objects.get(pk=a.owner.tenant_id).closed_at is not None
    page = browser.get(PAGE)
    assert "Reopen Alpha" in text(page) and "is closed." in text(page)
    assert browser.post("/app/business/reopen/").status_code == 302
    act(a.owner)
    assert Business.objects.get(pk=a.owner.tenant_id).closed_at is None


@pytest.mark.parametrize("role", ["manager", "staff", "client_login"])
def test_lesser_roles_get_403_from_the_closing_doors(matrix: TenantMatrix, role: str) -> None:
    a = matrix.a
    browser = logged_in(getattr(a, role))
    assert browser.get(PAGE).status_code == 403
    assert browser.post("/app/business/close/", {"close-confirm": "Alpha"}).status_code == 403
    close(a.owner)
    assert browser.post("/app/business/reopen/").status_code == 403
    act(a.owner)
    assert Business.objects.get(pk=a.owner.tenant_id).closed_at is not None


def test_a_stale_step_up_is_sent_to_confirm_and_nothing_changes(matrix: TenantMatrix) -> None:
    a = matrix.a
    browser = logged_in(a.owner)
    age_session(browser, 3600)
    answer = browser.post("/app/business/close/", {"close-confirm": "Alpha"})
    assert answer.status_code == 302 and "/step-up/" in answer["Location"]
    act(a.owner)
    assert Business.objects.get(pk=a.owner.tenant_id).closed_at is None
    close(a.owner)
    answer = browser.post("/app/business/reopen/")
    assert answer.status_code == 302 and "/step-up/" in answer["Location"]
    act(a.owner)
    assert Business.objects.get(pk=a.owner.tenant_id).closed_at is not None


def test_another_business_owner_cannot_reach_it(matrix: TenantMatrix) -> None:
    """The doors act on the session's own business only: Bravo's owner closing closes Bravo."""
    a, b = matrix.a, matrix.b
    close(a.owner)
    browser = logged_in(b.owner)
    assert "is closed." not in text(browser.get("/app/"))
    browser.post("/app/business/reopen/")
    act(a.owner)
    assert Business.objects.get(pk=a.owner.tenant_id).closed_at is not None


def test_reads_are_still_recorded_and_an_owner_can_still_start_a_job(matrix: TenantMatrix) -> None:
    """Read-only is for the business's data: its trail records reads, and work that only reads
    (an export, as a job) can be started and report progress."""
    from custodia.jobs.actions import do_start_job
    from custodia.jobs.models import Job
    from tests.audit.support import chain_events
    from tests.jobs import kinds  # noqa: F401  (registers the test job kinds)

    a = matrix.a
    close(a.owner)
    page = logged_in(a.owner).get(f"/app/clients/{a.client.pk}/")
    assert page.status_code == 200
    act(a.owner)
    recorded = [e["action"] for e in chain_events(a.owner)]
    assert {"client.read", "visit.list"} <= set(recorded[recorded.index("business.close") :])
    job = do_start_job(
        "test-probe",
        params={"other_business": str(matrix.b.owner.tenant_id), "other_client": "x"},
        actor=a.owner,
    )
    assert Job.objects.filter(pk=job.pk).exists()
