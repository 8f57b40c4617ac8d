"""The APNs push adapter against a local server that answers like Apple's (tests/wallet/apns.py):
a used credit reaches it as an empty HTTP/2 push with the pass type as topic and the pass
certificate as the client certificate; tokens APNs says are gone lose their registrations (in
that business only); a push service that is down, slow or named by a plain-HTTP URL never fails
the change; no push token or serial reaches a log line."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured, PermissionDenied

from custodia import embedded
from custodia.audit.models import AuditEvent
from custodia.payments.models import ClientPass
from custodia.wallet.actions import do_forget_push_tokens
from custodia.wallet.models import WalletRegistration
from custodia.wallet.push import ApnsPush, Push
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.payments.support import complete
from tests.test_settings import refused
from tests.wallet.apns import FakeApns
from tests.wallet.conftest import PASS_TYPE_ID, Sold
from tests.wallet.test_webservice import issued, registration_url

pytestmark = pytest.mark.django_db

DELIVERED = "a" * 64
UNREGISTERED = "b" * 64  # 410 Unregistered
BAD = "c" * 64  # 400 BadDeviceToken
THROTTLED = "d" * 64  # 429 TooManyRequests
BROKEN = "e" * 64  # 500 InternalServerError
OTHER_TOPIC = "f" * 64  # 400 DeviceTokenNotForTopic: a configuration problem, not a gone device
ANSWERS = {
    UNREGISTERED: (410, "Unregistered"),
    BAD: (400, "BadDeviceToken"),
    THROTTLED: (429, "TooManyRequests"),
    BROKEN: (500, "InternalServerError"),
    OTHER_TOPIC: (400, "DeviceTokenNotForTopic"),
}


@pytest.fixture(scope="session")
def apns_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The fake APNs server's certificate and key, and the local CA that issued them."""
    directory = tmp_path_factory.mktemp("apns") / "tls"
    certificate, key = embedded.ensure_tls(directory, ("localhost",), name="apns")
    return certificate, key, directory / "ca.pem"


@pytest.fixture
def apns(
    settings: Any, wallet_settings: Path, apns_tls: tuple[Path, Path, Path]
) -> Iterator[FakeApns]:
    """A fake APNs requiring the wallet's pass certificate; the APNs adapter pointed at it."""
    certificate, key, ca = apns_tls
    server = FakeApns(certificate, key, client_ca=wallet_settings / "ca.pem", answers=ANSWERS)
    settings.WALLET_PUSH_ADAPTER = "custodia.wallet.push.ApnsPush"
    settings.WALLET_APNS_URL = server.url
    settings.WALLET_APNS_CA_FILE = str(ca)
    settings.WALLET_APNS_TIMEOUT_SECONDS = 1
    yield server
    server.stop()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def register(serial: str, auth_token: str, device: str, push_token: str) -> None:
    answer = HttpsClient().post(
        registration_url(serial, device=device),
        data=json.dumps({"pushToken": push_token}),
        content_type="application/json",
        headers={"Authorization": f"ApplePass {auth_token}"},
    )
    assert answer.status_code == 201


def registered_pass(matrix: TenantMatrix, sold: Sold, *push_tokens: str) -> str:
    """The client's pass downloaded and registered by one device per push token; its serial."""
    document = issued(matrix, sold.mine.pk)
    serial = document["serialNumber"]
    for number, push_token in enumerate(push_tokens):
        register(serial, document["authenticationToken"], f"device{number:02d}", push_token)
    return serial  # type: ignore[no-any-return]


def tokens_left(tenant_actor: Any) -> set[str]:
    act(tenant_actor)
    return set(WalletRegistration.objects.values_list("push_token", flat=True))


def credits_left(client_pass: ClientPass, actor: Any) -> int:
    act(actor)
    client_pass.refresh_from_db()
    return client_pass.credits_left


def assert_nothing_identifying(logs: pytest.LogCaptureFixture, serial: str) -> None:
    text = logs.text
    assert serial not in text
    for token in (DELIVERED, *ANSWERS):
        assert token not in text
    assert "wallet push" in text  # the adapter did log, by counts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # type: ignore[no-any-return]


def test_a_used_credit_reaches_apns_as_an_empty_push_with_topic_and_pass_certificate(
    matrix: TenantMatrix,
    sold: Sold,
    apns: FakeApns,
    logs: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    serial = registered_pass(matrix, sold, DELIVERED)
    assert apns.received == []  # registering pushes nothing
    with django_capture_on_commit_callbacks(execute=True):
        complete(matrix.a.visit, matrix.a.staff)

    assert len(apns.received) == 1
    push = apns.received[0]
    assert (push.method, push.path, push.body) == ("POST", f"/3/device/{DELIVERED}", b"{}")
    assert push.protocol == "h2"
    assert push.headers["apns-topic"] == PASS_TYPE_ID
    assert push.headers["apns-push-type"] == "background"
    assert push.headers["apns-priority"] == "5"
    # The client certificate the server verified against the pass-signing CA is the pass's.
    assert f"Pass Type ID: {PASS_TYPE_ID}" in push.client_subject
    assert tokens_left(matrix.a.owner) == {DELIVERED}
    assert credits_left(sold.mine, matrix.a.owner) == 9
    assert "delivered: 1" in logs.text
    assert_nothing_identifying(logs, serial)


def test_gone_tokens_lose_their_registrations_in_that_business_only(
    matrix: TenantMatrix,
    sold: Sold,
    apns: FakeApns,
    logs: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    serial = registered_pass(
        matrix, sold, DELIVERED, UNREGISTERED, BAD, THROTTLED, BROKEN, OTHER_TOPIC
    )
    # Business B's client holds a pass on a device with the same (gone) token.
    theirs = issued(matrix, sold.outside.pk, login=matrix.b.client_login)
    register(theirs["serialNumber"], theirs["authenticationToken"], "deviceb", UNREGISTERED)

    with django_capture_on_commit_callbacks(execute=True):
        complete(matrix.a.visit, matrix.a.staff)

    assert sorted(p.path.rsplit("/", 1)[1] for p in apns.received) == sorted(
        [DELIVERED, UNREGISTERED, BAD, THROTTLED, BROKEN, OTHER_TOPIC]
    )
    # 410 and 400 BadDeviceToken: gone. 429, 5xx and another topic: logged, kept, not retried.
    assert tokens_left(matrix.a.owner) == {DELIVERED, THROTTLED, BROKEN, OTHER_TOPIC}
    assert tokens_left(matrix.b.owner) == {UNREGISTERED}
    act(matrix.a.owner)
    removed = AuditEvent.objects.filter(
        tenant_id=matrix.a.owner.tenant_id, action="wallet_device.unregister"
    )
    assert removed.count() == 2
    # By the wallet's push task: no login, the owner's reach in that one business.
    assert set(removed.values_list("actor_role", "actor_user_id")) == {("owner", None)}
    assert [e.detail for e in removed] == [{"reason": "push service: device gone"}] * 2
    assert all(UNREGISTERED not in json.dumps(e.detail) for e in removed)
    assert credits_left(sold.mine, matrix.a.owner) == 9
    assert "refused (429 TooManyRequests): 1" in logs.text
    assert "refused (500 InternalServerError): 1" in logs.text
    assert "gone (410 Unregistered): 1" in logs.text
    assert "removed: 2" in logs.text
    assert_nothing_identifying(logs, serial)


def test_a_push_service_that_is_down_does_not_fail_the_change(
    matrix: TenantMatrix,
    sold: Sold,
    apns: FakeApns,
    settings: Any,
    logs: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    serial = registered_pass(matrix, sold, DELIVERED, THROTTLED)
    settings.WALLET_APNS_URL = f"https://localhost:{free_port()}"  # nothing listens
    with django_capture_on_commit_callbacks(execute=True):
        complete(matrix.a.visit, matrix.a.staff)
    assert credits_left(sold.mine, matrix.a.owner) == 9  # the change stands
    assert tokens_left(matrix.a.owner) == {DELIVERED, THROTTLED}
    assert "lost (ConnectError): 2" in logs.text
    assert_nothing_identifying(logs, serial)


def test_a_slow_push_service_costs_one_timeout_and_does_not_fail_the_change(
    matrix: TenantMatrix,
    sold: Sold,
    apns: FakeApns,
    logs: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    serial = registered_pass(matrix, sold, DELIVERED, THROTTLED)
    apns.delay = 3  # the adapter waits 1 second
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        complete(matrix.a.visit, matrix.a.staff)
    assert time.monotonic() - started < 2.5  # one timeout, not one per device
    assert credits_left(sold.mine, matrix.a.owner) == 9
    assert tokens_left(matrix.a.owner) == {DELIVERED, THROTTLED}
    assert "lost (ReadTimeout): 2" in logs.text
    assert_nothing_identifying(logs, serial)


def test_a_plain_http_url_is_refused_and_the_change_stands(
    matrix: TenantMatrix,
    sold: Sold,
    apns: FakeApns,
    settings: Any,
    logs: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    registered_pass(matrix, sold, DELIVERED)
    settings.WALLET_APNS_URL = f"http://localhost:{apns.port}"
    with pytest.raises(ImproperlyConfigured, match="https://"):
        ApnsPush()
    with django_capture_on_commit_callbacks(execute=True):
        complete(matrix.a.visit, matrix.a.staff)
    assert apns.received == []
    assert credits_left(sold.mine, matrix.a.owner) == 9
    assert "wallet pushes not sent: ImproperlyConfigured" in logs.text
    # And at start-up.
    message = refused(tmp_path, {"CUSTODIA_WALLET_APNS_URL": "http://api.push.apple.com"})
    assert "CUSTODIA_WALLET_APNS_URL must be an https:// URL" in message


def test_the_server_requires_a_client_certificate(
    apns: FakeApns, apns_tls: tuple[Path, Path, Path]
) -> None:
    """The fake is as strict as APNs: without the pass certificate nothing is received."""
    context = ssl.create_default_context(cafile=str(apns_tls[2]))
    with (
        pytest.raises(httpx.HTTPError),
        httpx.Client(http2=True, verify=context, timeout=2) as client,
    ):
        client.post(f"{apns.url}/3/device/{DELIVERED}", content=b"{}")
    assert apns.received == []


def test_an_apns_certificate_the_adapter_does_not_trust_is_logged_not_raised(
    matrix: TenantMatrix,
    sold: Sold,
    apns: FakeApns,
    settings: Any,
    logs: pytest.LogCaptureFixture,
) -> None:
    # The adapter verifies APNs' certificate: without the CA that issued the fake's, nothing.
    settings.WALLET_APNS_CA_FILE = ""
    gone = ApnsPush().send([Push(PASS_TYPE_ID, DELIVERED)])
    assert gone == []
    assert apns.received == []
    assert "lost (ConnectError): 1" in logs.text


def test_only_the_push_task_forgets_push_tokens(matrix: TenantMatrix, sold: Sold) -> None:
    registered_pass(matrix, sold, UNREGISTERED)
    for actor in (matrix.a.owner, matrix.a.manager):
        act(actor)
        with pytest.raises(PermissionDenied):
            do_forget_push_tokens([UNREGISTERED], actor=actor)
    assert tokens_left(matrix.a.owner) == {UNREGISTERED}
