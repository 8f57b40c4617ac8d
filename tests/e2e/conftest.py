"""Fixtures for the browser tests: their own database, a real SMTP server, the real server over
TLS, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings

from custodia import embedded
from tests.e2e.support import Mailbox, Story
from tests.mail import CollectingHandler, SmtpServer, free_port
from tests.servers import prepare_server_database, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    """A missing browser is a failure, never a skip: a green run must have tested the pages.
    `make test` installs Chromium itself (or stops with the command to run)."""
    pytest.fail(f"{reason}: the browser tests cannot run, and they are never skipped")


# Module scope: while Playwright's sync API runs, the main thread has a running event loop, and
# Django then refuses database work in this process (SynchronousOnlyOperation) to later tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (never a downloaded browser)."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def e2e_database() -> Iterator[str]:
    """A fresh, migrated database of the browser tests' own, dropped at the end."""
    name = f"custodia_e2e_{os.getpid()}"
    prepare_server_database(name)
    try:
        yield name
    finally:
        # This process never connected to it; the admin connection is a fresh one, and the
        # socket directory is read now because the embedded server may have started after
        # settings were loaded.
        admin = dict(settings.ADMIN_DATABASE)
        if settings.EMBEDDED_DATABASE:
            admin["HOST"] = str(embedded.embedded_socket_dir(settings.EMBEDDED_PGDATA))
        embedded.drop_database(admin, name)


@pytest.fixture(scope="session")
def e2e_smtp() -> Iterator[SmtpServer]:
    """A plain-SMTP server on loopback that keeps every message the app sends."""
    # aiosmtpd logs every SMTP command at INFO; a failing test's output should show the app.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    server = SmtpServer(controller, handler, port)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def e2e_server_log(tmp_path_factory: Any) -> Path:
    """Where `e2e_server` writes everything the app, its job worker and its card vault print."""
    return Path(tmp_path_factory.mktemp("e2e-server")) / "serve.log"


@pytest.fixture(scope="session")
def e2e_server(e2e_database: str, e2e_smtp: SmtpServer, e2e_server_log: Path) -> Iterator[str]:
    """`custodia serve` (granian over TLS with the local CA) mailing through the test server;
    its output (the app's and the vault's logs) goes to `e2e_server_log`."""
    base_url, stop = start_server(
        e2e_database,
        {
            "CUSTODIA_SMTP_HOST": "127.0.0.1",
            "CUSTODIA_SMTP_PORT": str(e2e_smtp.port),
            # Plain SMTP is allowed outside production only; the test server has no TLS.
            "CUSTODIA_SMTP_STARTTLS": "0",
            "CUSTODIA_SMTP_SSL": "0",
        },
        log=e2e_server_log,
    )
    try:
        yield base_url
    finally:
        stop()


@pytest.fixture(scope="module")
def story(
    browser: Browser,
    e2e_server: str,
    e2e_smtp: SmtpServer,
    tmp_path_factory: Any,
) -> Iterator[Story]:
    """One business's day, shared by the ordered steps of a module."""
    # Screenshots are for a person to look at; nothing asserts on them.
    wanted = os.environ.get("CUSTODIA_E2E_SCREENSHOTS")
    screenshots = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    screenshots.mkdir(parents=True, exist_ok=True)
    day = Story(e2e_server, browser, Mailbox(e2e_smtp), screenshots)
    try:
        yield day
    finally:
        day.close()
