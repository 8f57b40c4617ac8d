"""A real SMTP server for tests: aiosmtpd on a free loopback port, with Django pointed at it.

tests/conftest.py registers this module as a plugin: ask for the `smtp_server` fixture.
"""

from __future__ import annotations

import email
import email.policy
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    """One message as the server received it."""

    envelope_from: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain", "html"))
        assert part is not None, "message has no text body"
        return str(part.get_content())

    def links(self) -> list[str]:
        """Every https:// URL in the text body, in order."""
        return re.findall(r"https://[^\s<>\"]+", self.body)


@dataclass
class CollectingHandler:
    """aiosmtpd handler that keeps every message (and can refuse them all)."""

    messages: list[Received] = field(default_factory=list)
    refuse: bool = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse:
            return "554 Transaction failed"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """The running server as a test sees it."""

    controller: Controller
    handler: CollectingHandler
    port: int
    running: bool = True

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[Received]:
        """Messages received so far, once at least `count` have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.handler.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.handler.messages) >= count, (
            f"expected {count} message(s), got {len(self.handler.messages)}"
        )
        return list(self.handler.messages)

    def stop(self) -> None:
        """Stop listening (to test what happens when mail cannot be sent)."""
        if self.running:
            self.running = False
            self.controller.stop()


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[SmtpServer]:
    """A plain-SMTP server on 127.0.0.1 collecting messages; Django sends through it."""
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    server = SmtpServer(controller, handler, port)
    try:
        yield server
    finally:
        server.stop()
