"""A pass that expires moves its wallet pass's tag and pushes its devices (the wallet's hourly
task), once; the device then lists it as updated."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from custodia.payments.actions.passes import do_sell_pass
from custodia.tenancy.actors import system_actor
from custodia.wallet.push import Push, RecordingPush
from custodia.wallet.tasks import EXPIRY_TASK, push_expired
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.payments.support import catalog
from tests.wallet.conftest import PASS_TYPE_ID
from tests.wallet.support import pass_json
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db

DEVICE = "0123456789abcdef0123456789abcdef"


def test_an_expired_pass_is_pushed_once(
    matrix: TenantMatrix, django_capture_on_commit_callbacks: Any
) -> None:
    a = matrix.a
    kinds = catalog(a)
    act(a.owner)
    soon = timezone.now() - dt.timedelta(days=kinds.ten.validity_days) + dt.timedelta(minutes=5)
    client_pass, _ = do_sell_pass(a.client, kinds.ten, actor=a.owner, starts_at=soon)
    document = pass_json(
        logged_in(a.client_login).get(f"/app/passes/{client_pass.pk}/wallet.pkpass").content
    )
    serial, token = document["serialNumber"], document["authenticationToken"]
    device = HttpsClient()
    registered = device.post(
        f"/wallet/v1/devices/{DEVICE}/registrations/{PASS_TYPE_ID}/{serial}",
        data=json.dumps({"pushToken": "abc123"}),
        content_type="application/json",
        headers={"Authorization": f"ApplePass {token}"},
    )
    assert registered.status_code == 201
    listing = f"/wallet/v1/devices/{DEVICE}/registrations/{PASS_TYPE_ID}"
    tag = device.get(listing).json()["lastUpdated"]

    actor = system_actor(a.owner.tenant_id, task=EXPIRY_TASK)
    act(actor)
    assert push_expired(actor) == 0  # not yet expired
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=10), tick=True):
        act(actor)
        with django_capture_on_commit_callbacks(execute=True):
            assert push_expired(actor) == 1
        act(actor)
        assert push_expired(actor) == 0  # once
    assert RecordingPush.sent == [Push(PASS_TYPE_ID, "abc123")]
    assert device.get(f"{listing}?passesUpdatedSince={tag}").json()["serialNumbers"] == [serial]
