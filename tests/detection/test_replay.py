"""Attack traffic replayed through the real code paths (the login endpoint, the pages, the audit
writer, the audit verifier, the restore drill); each test asserts the exact set of alerts that
fire, platform-wide and in each business, and that a second round raises none again."""

from __future__ import annotations

import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections, transaction
from django.urls import reverse

from custodia.audit import chain
from custodia.core.actor import acting_as
from custodia.core.audit import AuditAction, record
from custodia.lifecycle.backups.drill import drill
from custodia.lifecycle.backups.store import LocalStore
from tests.conftest import HttpsClient
from tests.detection.support import business_alerts, detect_round, person, platform_alerts
from tests.factories import PASSWORD, TenantMatrix

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
NONE: dict[str, set[tuple[str, str]]] = {"a": set(), "b": set()}


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Path) -> None:
    """This process's own hashing slots: other test runs on the machine share var/run's."""
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


def fail_sign_in(email: str, ip: str, agent: str = CHROME_LINUX) -> None:
    browser = HttpsClient(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = browser.post(reverse("account_login"), {"login": email, "password": "wrong guess 1"})
    assert response.status_code in (200, 302, 400)


def sign_in(email: str, ip: str, agent: str = CHROME_LINUX) -> None:
    browser = HttpsClient(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = browser.post(reverse("account_login"), {"login": email, "password": PASSWORD})
    assert response.status_code == 302


def test_the_matrix_itself_raises_nothing(matrix: TenantMatrix) -> None:
    detect_round(matrix)
    assert platform_alerts() == set()
    assert business_alerts(matrix) == NONE


def test_credential_stuffing_from_one_address(matrix: TenantMatrix, settings: Any) -> None:
    """Ten different names from one address inside ten minutes: one platform alert, about that
    address; a second round raises it again for no one."""
    # Paced under the per-address limit, as a careful attacker would be over ten minutes.
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed_address": ""}
    names = [f"victim{n}@stuffed.test" for n in range(9)] + [matrix.a.staff.user.email]
    for name in names:
        fail_sign_in(name, "203.0.113.9")
    fail_sign_in("someone@else.test", "198.51.100.1")  # another address, one name: nothing
    detect_round(matrix)
    assert platform_alerts() == {("credential_stuffing", "address 203.0.113.9")}
    assert business_alerts(matrix) == NONE
    detect_round(matrix)
    assert len(platform_alerts()) == 1


def test_nine_names_from_one_address_is_not_stuffing(matrix: TenantMatrix) -> None:
    for n in range(9):
        fail_sign_in(f"victim{n}@stuffed.test", "203.0.113.9")
    detect_round(matrix)
    assert platform_alerts() == set()


def test_password_spraying_across_addresses(matrix: TenantMatrix) -> None:
    """Twenty names tried once each from twenty addresses: spraying, and no stuffing."""
    for n in range(20):
        fail_sign_in(f"person{n}@sprayed.test", f"198.51.100.{n + 1}")
    detect_round(matrix)
    assert platform_alerts() == {("password_spraying", "sign-in")}
    assert business_alerts(matrix) == NONE


def test_a_staff_sign_in_from_a_new_network_alerts_their_business_only(
    matrix: TenantMatrix,
) -> None:
    staff = matrix.a.staff.user
    sign_in(staff.email, "192.0.2.10")
    sign_in(staff.email, "192.0.2.77")  # same browser, same /24: familiar
    sign_in(staff.email, "203.0.113.50", agent=FIREFOX_WINDOWS)
    detect_round(matrix)
    assert platform_alerts() == set()
    assert business_alerts(matrix) == {
        "a": {("new_network_sign_in", f"person {staff.pk} from 203.0.113.0/24")},
        "b": set(),
    }


def test_a_lockout_of_a_manager_alerts_their_business(matrix: TenantMatrix, settings: Any) -> None:
    manager = matrix.a.manager.user
    for _ in range(settings.LOGIN_LOCKOUT_THRESHOLD):
        fail_sign_in(manager.email, "192.0.2.10")
    detect_round(matrix)
    assert platform_alerts() == set()
    assert business_alerts(matrix) == {"a": {("member_lockout", person(manager.pk))}, "b": set()}


def test_id_probing_through_the_pages(matrix: TenantMatrix) -> None:
    """A staff member of A asks for ten of B's clients' pages: ten refusals, one alert in A."""
    page = HttpsClient().act_as(matrix.a.staff)
    targets = [matrix.b.client.pk, matrix.b.other_client.pk] + [uuid.uuid4() for _ in range(8)]
    for client_id in targets:
        assert page.get(f"/app/clients/{client_id}/").status_code == 404
    detect_round(matrix)
    assert business_alerts(matrix) == {
        "a": {("id_probing", person(matrix.a.staff.user.pk))},
        "b": set(),
    }
    assert platform_alerts() == set()


def test_nine_refusals_are_not_probing(matrix: TenantMatrix) -> None:
    page = HttpsClient().act_as(matrix.a.staff)
    for _ in range(9):
        assert page.get(f"/app/clients/{uuid.uuid4()}/").status_code == 404
    detect_round(matrix)
    assert business_alerts(matrix) == NONE


def test_bulk_reads_above_the_floor_for_a_person_without_history(matrix: TenantMatrix) -> None:
    """A manager's list reads of 250 records in an hour, with no history: over the floor."""
    manager = matrix.a.manager
    with transaction.atomic(), acting_as(manager):
        for _ in range(5):
            ids = [uuid.uuid4() for _ in range(50)]
            record(AuditAction.CLIENT_LIST, actor=manager, subject_ids=ids, detail={"count": 50})
    with transaction.atomic(), acting_as(matrix.a.staff):
        ids = [uuid.uuid4() for _ in range(150)]
        record(AuditAction.CLIENT_LIST, actor=matrix.a.staff, subject_ids=ids)  # 150: fine
    detect_round(matrix)
    assert business_alerts(matrix) == {
        "a": {("bulk_reads", person(manager.user.pk))},
        "b": set(),
    }


def test_three_exports_in_a_day(matrix: TenantMatrix) -> None:
    owner = matrix.b.owner
    with transaction.atomic(), acting_as(owner):
        for _ in range(3):
            record(AuditAction.EXPORT_START, actor=owner, detail={"kind": "business"})
    detect_round(matrix)
    assert business_alerts(matrix) == {"a": set(), "b": {("exports", person(owner.user.pk))}}


def test_a_broken_audit_chain() -> None:
    """`custodia audit verify` finding a changed event raises the platform alert. (No matrix:
    its events on the test's own connection would hold the table the tamper must alter.)"""
    tenant = uuid.uuid4()
    for number in range(3):
        record(AuditAction.CLIENT_READ, tenant_id=tenant, detail={"n": number}, using=chain.USING)
    with connections[chain.USING].cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute(
            "UPDATE audit_auditevent SET detail = '{\"n\": 9}' WHERE tenant_id = %s AND seq = 2",
            [tenant],
        )
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
    with pytest.raises(CommandError):
        call_command("audit", "verify", stdout=StringIO())
    assert platform_alerts() == {("audit_chain_broken", f"audit chain {tenant}")}


def test_a_failed_restore_drill(matrix: TenantMatrix, settings: Any, tmp_path: Path) -> None:
    settings.BACKUP_DRILL_LOG_FILE = tmp_path / "drills.jsonl"
    result = drill(LocalStore(tmp_path / "no-backups"), [], notify=False)
    assert not result.ok
    assert platform_alerts() == {("restore_drill_failed", "database backup (none)")}
