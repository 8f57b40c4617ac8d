"""Account mail goes out after the commit, beside the answer; a mail server that is down never
fails the sign-in, reset or change that sent it (found by `make bench FULL=1`: a new-device notice
to an unreachable SMTP host turned a login into a 500)."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse

from custodia.accounts.models import SecurityEvent, SecurityEventKind
from tests.conftest import HttpsClient
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.mail_after_commit]

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe closes


def sign_in(user: Any, agent: str) -> int:
    browser = HttpsClient(HTTP_USER_AGENT=agent, REMOTE_ADDR="192.0.2.10")
    answer = browser.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    return answer.status_code


def test_a_sign_in_succeeds_while_the_mail_server_is_down(
    settings: Any, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    user = UserFactory()
    assert sign_in(user, CHROME) == 302
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        caplog.at_level(logging.WARNING),
    ):
        assert sign_in(user, FIREFOX) == 302  # a new device: a notice is due
    assert callbacks  # the notice waited for the commit
    # The notice's thread failed quietly: logged by type, never raised, never the message.
    for _ in range(50):
        if "could not be sent" in caplog.text:
            break
        time.sleep(0.1)
    assert "A mail could not be sent (ConnectionRefusedError)" in caplog.text
    assert PASSWORD not in caplog.text
    assert SecurityEvent.objects.filter(user=user, kind=SecurityEventKind.NEW_DEVICE_LOGIN).exists()


def test_mail_of_a_rolled_back_request_is_never_sent(
    smtp_server: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from allauth.account.adapter import get_adapter

    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                get_adapter().send_mail(
                    "accounts/email/new_device_login",
                    user.email,
                    {"user": user, "email": user.email, "device": "x", "ip": "x", "at": "x"},
                )
                raise RuntimeError("the change failed")
        except RuntimeError:
            pass
    time.sleep(0.5)
    assert smtp_server.messages == []
