"""`custodia audit`: verify, checkpoint, purge and maintain, as an operator runs them."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from custodia.audit import chain
from tests.audit.conftest import owner_events
from tests.audit.test_chain import _events, _tamper

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def audit(*args: str) -> tuple[list[str], list[str]]:
    out, err = StringIO(), StringIO()
    try:
        call_command("audit", *args, stdout=out, stderr=err)
    finally:
        print(out.getvalue(), err.getvalue())
    return out.getvalue().splitlines(), err.getvalue().splitlines()


def test_verify_reports_every_chain_and_fails_on_the_first_altered_event() -> None:
    good, bad = uuid.uuid4(), uuid.uuid4()
    _events(good, 5)
    _events(bad, 5)
    lines, _ = audit("verify")
    assert any(line.startswith("OK") and str(good) in line and "5 events" in line for line in lines)

    victim = owner_events(bad)[2]
    _tamper("UPDATE audit_auditevent SET target_type = 'visit' WHERE id = %s", [victim["id"]])
    out = StringIO()
    with pytest.raises(CommandError, match="does not verify"):
        call_command("audit", "verify", stdout=out)
    text = out.getvalue()
    assert f"BROKEN  deleted business ({bad})" in text
    assert (
        f"Altered (lane {victim['lane']}, sequence {victim['seq']}, event {victim['id']})" in text
    )
    assert f"OK      deleted business ({good})" in text


def test_checkpoint_signs_good_chains_records_itself_and_refuses_a_broken_one() -> None:
    good, bad = uuid.uuid4(), uuid.uuid4()
    _events(good, 3)
    _events(bad, 3)
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [owner_events(bad)[0]["id"]])
    with pytest.raises(CommandError, match="1 chain"):
        audit("checkpoint")
    assert owner_events(good)[-1]["action"] == "audit.checkpoint"
    assert all(event["action"] != "audit.checkpoint" for event in owner_events(bad))
    report = chain.verify_chain(good)
    assert report.ok and report.checkpoints == 1


def test_unknown_business_is_named() -> None:
    with pytest.raises(CommandError, match="No business with the slug 'nope'"):
        audit("verify", "--business", "nope")


def test_maintain_once_checkpoints_and_purges_nothing_young() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 4)
    audit("maintain", "--once")
    actions = [event["action"] for event in owner_events(tenant)]
    assert actions.count("client.read") == 4
    assert actions[-1] == "audit.checkpoint"
    assert "audit.purge" not in actions
