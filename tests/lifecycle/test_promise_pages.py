"""The deletion page and /security/ state the promise with N computed from the settings, and
/security/ shows the newest restore drill as the signed drill log has it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from custodia.lifecycle import backups
from custodia.lifecycle.backups import DrillResult
from tests.acting import act
from tests.web.support import logged_in, text

PROMISE = "data is unreadable everywhere, backups included, {n} days after deletion"

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def flat(response: Any) -> str:
    return " ".join(response.content.decode().split())


@pytest.mark.parametrize("days", [30, 7])
def test_the_deletion_page_states_n_from_the_settings(
    matrix: Any, settings: Any, days: int
) -> None:
    settings.KEYSTORE_BACKUP_RETENTION_DAYS = days
    act(matrix.a.owner)
    page = text(logged_in(matrix.a.owner).get("/app/business/delete/"))
    assert PROMISE.format(n=days + 1) in page
    assert f"kept {days} days" in page


@pytest.mark.parametrize("days", [30, 14])
def test_the_security_page_states_n_from_the_settings(web: Any, settings: Any, days: int) -> None:
    settings.KEYSTORE_BACKUP_RETENTION_DAYS = days
    page = flat(web.get("/security/"))
    assert PROMISE.format(n=days + 1) in page
    assert f"kept {days} days and deleted automatically" in page


def test_the_security_page_shows_the_newest_drill(web: Any, private_drill_log: Path) -> None:
    assert "No restore drill has run yet." in flat(web.get("/security/"))
    backups.drill_module.record_drill(
        DrillResult("20261201T031500Z-1a2b3c4d", True, "ok", at="2026-12-01T03:20:00+00:00")
    )
    page = flat(web.get("/security/"))
    assert (
        'Last restore drill: <time datetime="2026-12-01T03:20:00+00:00">Tue 1 Dec 2026</time>'
        in page
    )
    assert "<strong>passed</strong>" in page
    backups.drill_module.record_drill(
        DrillResult("20261208T031500Z-1a2b3c4d", False, "broken", at="2026-12-08T03:20:00+00:00")
    )
    page = flat(web.get("/security/"))
    assert "Tue 8 Dec 2026</time>, <strong>failed</strong>" in page
    # A log edited to hide the failure is not believed.
    lines = private_drill_log.read_text().splitlines()
    private_drill_log.write_text(
        lines[0] + "\n" + lines[1].replace('"ok":false', '"ok":true') + "\n"
    )
    page = flat(web.get("/security/"))
    assert "The record of restore drills does not verify" in page
    assert "<strong>passed</strong>" not in page
