"""Platform-wide alerts reach the operators: an email to each active operator (queued with the
alert, sent by a job that reads who the operators are in its own transaction) and the console's
alerts page, which only operators reach."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection, transaction
from django.urls import reverse

from custodia.detection.actions import raise_platform_alert
from custodia.detection.delivery import OPERATORS_TASK
from custodia.detection.rules import Finding
from custodia.detection.tasks import tell_operators
from custodia.platform.actions import do_disable_operator
from tests.platform.support import make_operator, platform_events, signed_in

pytestmark = pytest.mark.django_db

STUFFING = Finding(
    rule="credential_stuffing",
    subject="address 203.0.113.9",
    evidence={"accounts": 40, "failures": 55},
)


def queued_for_operators() -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT args FROM procrastinate_jobs WHERE task_name = %s", [OPERATORS_TASK])
        rows = [row[0] for row in cursor.fetchall()]
    return [json.loads(args) if isinstance(args, str) else args for args in rows]


def test_each_active_operator_is_emailed_a_platform_alert(smtp_server: Any) -> None:
    olive = make_operator("olive@platform.example")
    make_operator("gone@platform.example")
    do_disable_operator("gone@platform.example")
    sent = len(smtp_server.wait_for(2))  # the operators' set-password links
    alert_id = raise_platform_alert(STUFFING)
    [job] = queued_for_operators()
    assert job["alert_id"] == str(alert_id) and job["rule"] == "credential_stuffing"
    assert raise_platform_alert(STUFFING) is None  # once within the window
    assert len(queued_for_operators()) == 1
    tell_operators(**job)
    [message] = smtp_server.wait_for(sent + 1)[sent:]
    assert message.recipients == [olive.email]
    assert message.subject.endswith(
        "Platform security alert (High): Credential stuffing: many"
        " accounts failing from one address"
    )
    body = message.body
    assert "credential" in body.lower() and reverse("operator_alerts") in body
    assert "203.0.113.9" not in body  # the evidence stays in the console


def test_the_console_lists_platform_alerts_for_operators_only(matrix: Any, web_as: Any) -> None:
    alert_id = raise_platform_alert(STUFFING)
    url = reverse("operator_alerts")
    for member in (matrix.a.owner, matrix.a.manager, matrix.b.owner):
        assert web_as(member).get(url).status_code == 404
    operator = make_operator()
    page = signed_in(operator).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "address 203.0.113.9" in html and "accounts: 40" in html
    with transaction.atomic():
        [(target_type, target_id, detail)] = platform_events(operator, "operator.console.read")
    assert (target_id, detail["count"]) == ("alerts", 1)
    assert alert_id is not None
