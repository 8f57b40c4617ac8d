"""Helpers for the browser tests: people at their own browsers, a mailbox, ordered steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.mail import Received, SmtpServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

# What a CSP violation looks like in Chromium's console ("Refused to ... because it violates
# the following Content Security Policy directive ...").
CSP_MARKER = "Content Security Policy"


@dataclass
class Mailbox:
    """The test SMTP server seen as an inbox: each message is handed out once."""

    smtp: SmtpServer
    taken: set[int] = field(default_factory=set)

    def receive(self, to: str, *, timeout: float = 10.0) -> Received:
        """The next message for `to`, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.smtp.messages):
                recipients = [address.lower() for address in message.recipients]
                if index not in self.taken and to.lower() in recipients:
                    self.taken.add(index)
                    return message
            if time.monotonic() > deadline:
                seen = [m.recipients for m in self.smtp.messages]
                raise AssertionError(f"no email for {to} within {timeout}s (got: {seen})")
            time.sleep(0.05)

    def link(self, to: str, contains: str) -> str:
        """The link containing `contains` in the next message for `to`."""
        message = self.receive(to)
        links = [link for link in message.links() if contains in link]
        assert links, f"no {contains!r} link in the email {message.subject!r}"
        return links[0]


@dataclass
class Person:
    """One person at their own browser: separate cookies, one tab."""

    label: str
    context: BrowserContext
    page: Page

    def cookie(self, name: str) -> dict[str, object]:
        """The browser's cookie `name` (fails when the browser holds none)."""
        cookies = {cookie["name"]: cookie for cookie in self.context.cookies()}
        assert name in cookies, f"{self.label} has no {name} cookie (has {sorted(cookies)})"
        return dict(cookies[name])


@dataclass
class Story:
    """The state one business's day carries from step to step."""

    base_url: str
    browser: Browser
    mailbox: Mailbox
    screenshots: Path
    people: dict[str, Person] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    # Called with each new person's browser context before its first page loads (to listen).
    watchers: list[Callable[[BrowserContext], None]] = field(default_factory=list)

    def url(self, path: str) -> str:
        """An absolute URL on the server under test."""
        return f"{self.base_url}{path}"

    def person(self, label: str, *, viewport: dict[str, int] | None = None) -> Person:
        """A new person with a fresh browser context (cookies of their own), at a desktop's
        width unless `viewport` says otherwise."""
        context = self.browser.new_context(
            ignore_https_errors=True,
            base_url=self.base_url,
            viewport=viewport or {"width": 1280, "height": 900},
        )
        context.set_default_timeout(10_000)
        context.on("console", self._on_console)
        context.on("weberror", lambda error: self.page_errors.append(str(error.error)))
        for watch in self.watchers:
            watch(context)
        page = context.new_page()
        page.on("framenavigated", lambda frame: self._on_navigation(frame.url))
        self.people[label] = Person(label, context, page)
        return self.people[label]

    def _on_console(self, message: ConsoleMessage) -> None:
        if CSP_MARKER in message.text:
            self.csp_violations.append(f"{message.location.get('url', '?')}: {message.text}")

    def _on_navigation(self, url: str) -> None:
        if url.startswith(self.base_url):
            self.visited.append(url.removeprefix(self.base_url))

    def snap(self, person: Person, name: str) -> None:
        """A full-page screenshot for a person to look at; nothing asserts on it."""
        person.page.screenshot(path=self.screenshots / f"{name}.png", full_page=True)

    @contextmanager
    def step(self, name: str, *, after: tuple[str, ...] = ()) -> Iterator[None]:
        """Run step `name`; skip it when a step it builds on did not complete."""
        missing = [earlier for earlier in after if earlier not in self.done]
        if missing:
            pytest.skip(f"step(s) {', '.join(missing)} did not complete, so {name!r} cannot run")
        yield
        self.done.add(name)

    def close(self) -> None:
        """Close every person's browser context."""
        for person in self.people.values():
            person.context.close()
