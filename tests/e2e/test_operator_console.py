"""The operator console in a real browser, against the real server over TLS.

An operator is made at the console (`custodia operator create`, mailing through the test SMTP
server), sets a password from the mailed link, is made to enrol an authenticator app before
anything else, signs in again with password and code, sees a report a visitor sent through the
public form (acknowledged by email at once), and answers it; the reporter receives the answer.
Every console page and the form fit a 390 px phone and a 1280 px desktop, pass axe (no serious
or critical finding) and break no CSP rule; screenshots are kept for a person to look at.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import Person, Story
from tests.e2e.test_every_page import DESKTOP, PHONE, axe_source, checked  # noqa: F401
from tests.e2e.test_mfa_browser import current_totp
from tests.servers import django_environment, run_django

pytestmark = pytest.mark.e2e

EMAIL = "olive@platform-ops.example"
PASSWORD = "lantern-cobalt-meadow-93"
REPORTER = "finder@research.example"
DETAILS = "The invoice PDF of another business opens by its id. MARKER-5519"
EVENTS = """
import json
from django.conf import settings
from custodia.embedded import admin_connection
with admin_connection(settings.ADMIN_DATABASE, settings.DATABASES["default"]["NAME"]) as conn:
    rows = conn.execute(
        "SELECT action, actor_user_id IS NULL FROM audit_auditevent WHERE tenant_id IS NULL"
        " AND (action LIKE 'operator.%' OR action LIKE 'vulnerability_report.%') ORDER BY id"
    ).fetchall()
print(json.dumps([[action, no_login] for action, no_login in rows]))
"""


def create_operator(database: str, smtp_port: int, public_url: str) -> str:
    """`custodia operator create`, mailing through the test SMTP server links to the server under
    test; what it printed."""
    env = {
        **django_environment(database),
        "CUSTODIA_PUBLIC_URL": public_url,
        "CUSTODIA_SMTP_HOST": "127.0.0.1",
        "CUSTODIA_SMTP_PORT": str(smtp_port),
        "CUSTODIA_SMTP_STARTTLS": "0",
        "CUSTODIA_SMTP_SSL": "0",
    }
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "custodia.cli", "operator", "create", "--email", EMAIL,
         "--name", "Olive Operator"],
        check=True, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    return done.stdout


def log_in(page: Page, secret: str | None, used_step: int | None = None) -> None:
    """Sign in with the password (and a code from the authenticator app, in a later 30-second
    step than `used_step`: a code is accepted once)."""
    page.goto("/accounts/login/?next=/operator/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    if secret is not None:
        expect(page).to_have_url(re.compile(r"/accounts/2fa/authenticate/"))
        while used_step is not None and int(time.time()) // 30 <= used_step:
            time.sleep(0.5)
        page.get_by_label("Code").fill(current_totp(secret))
        page.get_by_role("button", name="Sign In").click()


def fits_and_passes_axe(story: Story, person: Person, path: str, name: str, axe: str) -> list[str]:
    page = person.page
    answer = page.goto(path)
    assert answer is not None and answer.status == 200, (path, answer and answer.status)
    story.snap(person, name)
    return [f"{name} {path}: {problem}" for problem in checked(page, axe)]


def test_an_operator_with_totp_answers_a_report(
    story: Story,
    e2e_database: str,
    axe_source: str,  # noqa: F811
) -> None:
    printed = create_operator(e2e_database, story.mailbox.smtp.port, story.base_url)
    assert EMAIL in printed and PASSWORD not in printed
    link = story.mailbox.link(EMAIL, "/accounts/password/reset/key/")

    operator = story.person("operator")
    page = operator.page
    page.goto(link)
    page.locator("input[name=password1]").fill(PASSWORD)
    page.locator("input[name=password2]").fill(PASSWORD)
    page.get_by_role("button", name="Save the new password").click()

    # Signed in, an operator without a factor reaches nothing but enrolment.
    log_in(page, None)
    expect(page).to_have_url(re.compile(r"/accounts/2fa/$"))
    page.goto("/operator/")
    expect(page).to_have_url(re.compile(r"/accounts/2fa/$"))
    page.get_by_role("link", name="Activate").click()
    if "/accounts/reauthenticate/" in page.url:
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm").click()
    secret = page.get_by_label("Authenticator secret").input_value()
    page.get_by_label("Authenticator code").fill(current_totp(secret))
    activated_in = int(time.time()) // 30
    page.get_by_role("button", name="Activate").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/recovery-codes/$"))

    # A visitor reports a vulnerability through the public form, on a phone.
    visitor = story.person("visitor", viewport=PHONE)
    visitor.page.goto("/security/report/")
    visitor.page.get_by_label("Summary").fill("Invoice PDFs of other businesses")
    visitor.page.get_by_label("Details").fill(DETAILS)
    visitor.page.get_by_label("Your email").fill(REPORTER)
    visitor.page.get_by_role("button", name="Send the report").click()
    reference = re.search(r"VR-[A-Z2-9]{10}", visitor.page.locator("main").inner_text())
    assert reference is not None
    acknowledgement = story.mailbox.receive(REPORTER)
    assert reference.group(0) in acknowledgement.subject
    assert "MARKER-5519" not in acknowledgement.body

    # The operator signs in again with password and code, and lands on the console.
    page.get_by_role("button", name="Log out").click()
    log_in(page, secret, activated_in)
    expect(page).to_have_url(re.compile(r"/operator/$"))
    row = page.get_by_role("row").filter(has_text=reference.group(0))
    expect(row).to_contain_text("Not yet")
    row.get_by_role("link", name=reference.group(0)).click()
    expect(page.locator("main")).to_contain_text("MARKER-5519")
    page.get_by_label("First response").fill("Confirmed; a fix ships today. Thank you.")
    page.get_by_role("button", name="Send the first response").click()
    expect(page.locator("main")).to_contain_text("First response recorded.")
    answer = story.mailbox.receive(REPORTER)
    assert "a fix ships today" in answer.body
    report_path = page.url.removeprefix(story.base_url)

    problems: list[str] = []
    paths = ["/operator/", report_path, "/operator/backups/", "/operator/businesses/"]
    for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        for number, path in enumerate(paths):
            problems += fits_and_passes_axe(
                story, operator, path, f"operator-{number}-{size_name}", axe_source
            )
        problems += fits_and_passes_axe(
            story, visitor, "/security/report/", f"report-form-{size_name}", axe_source
        )
    assert problems == [], "\n".join(problems)
    assert story.csp_violations == []
    assert story.page_errors == []

    events = json.loads(run_django(e2e_database, EVENTS).strip().splitlines()[-1])
    assert ["operator.create", True] in events  # by the console: no login
    assert ["vulnerability_report.submit", True] in events  # by a visitor
    assert ["vulnerability_report.respond", False] in events  # by the operator
    assert ["operator.console.read", False] in events
