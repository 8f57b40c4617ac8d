"""Every main page, as each role sees it in the demo business (every feature with data), on a
390 px phone and a 1280 px desktop: no sideways scroll, no CSP violation, and axe-core (from npm,
run in the page) finds no serious or critical accessibility violation.

axe-core comes from `make test` (`npm install --prefix var/axe`); without it the test fails and
says how to get it, never skips.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.e2e.support import CSP_MARKER
from tests.servers import run_django

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
AXE = Path(settings.PROJECT_DIR) / "var" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# What counts: the WCAG 2.x A and AA rules, at the two worst impacts.
AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
    resultTypes: ['violations'],
  });
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ' (' + v.impact + '): '
      + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
}"""
# Links whose first match on a listing page gives a record's own pages.
ID = r"[0-9a-f-]{36}"


@pytest.fixture(scope="module")
def logins(e2e_database: str) -> dict[str, tuple[str, str]]:
    """The demo business seeded into the browser tests' database: role -> (email, password)."""
    code = (
        "import json\n"
        "from custodia.ops.management.commands import demo\n"
        "print(json.dumps(None if demo.demo_business_exists() else demo.seed()))\n"
    )
    rows = json.loads(run_django(e2e_database, code).strip().splitlines()[-1])
    assert rows, "the demo business was seeded by another test module: seed it here only"
    logins: dict[str, tuple[str, str]] = {}
    for email, password, role in rows:
        logins.setdefault(role, (email, password))  # the first of each role (Priya: staff)
    return logins


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make test` (it runs `npm install --prefix var/axe`).")
    return AXE.read_text()


def log_in(context: BrowserContext, email: str, password: str) -> Page:
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    return page


def first_link(page: Page, path: str, pattern: str) -> str:
    """The first link on `path` whose address matches `pattern` (a record's own page)."""
    page.goto(path)
    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))")
    for href in hrefs:
        if re.fullmatch(pattern, href or ""):
            return str(href)
    raise AssertionError(f"no link like {pattern} on {path}")


def pages_of(page: Page, role: str) -> list[str]:
    """The pages `role` uses, records' pages found by following the listings."""
    common = ["/app/security/", "/accounts/2fa/", "/accounts/password/change/", "/accounts/email/"]
    if role == "client":
        plan = first_link(page, "/app/passes/", rf"/app/plans/{ID}/buy/")
        visit = first_link(page, "/app/portal/", rf"/app/visits/{ID}/")
        return [
            "/app/portal/",
            "/app/portal/request/",
            "/app/notifications/",
            "/app/passes/",
            plan,
            visit,
            *common,
        ]
    client = first_link(page, "/app/clients/", rf"/app/clients/{ID}/")
    # Staff find their visits on the dashboard ("Your next visits"); managers on the calendar.
    listing = "/app/" if role == "staff" else "/app/calendar/"
    visit = first_link(page, listing, rf"/app/visits/{ID}/")
    staff_pages = [
        "/app/",
        "/app/today/",
        "/app/clients/",
        client,
        visit,
        "/app/security/calendar-feed/",
    ]
    if role == "staff":
        return [*staff_pages, *common]
    manager = [
        *staff_pages,
        "/app/calendar/",
        f"{client}history/" if role == "owner" else f"{client}edit/",
        f"{visit}edit/",
        "/app/clients/new/",
        "/app/clients/import/",
        "/app/visits/new/",
        f"/app/visits/new/?client={client.split('/')[3]}",
        "/app/services/",
        "/app/staff/",
        "/app/payments/catalog/",
        "/app/invoices/",
        "/app/notifications/",
        f"/app/clients/{client.split('/')[3]}/passes/",
        # Pets and household details (docs/profiles.md): the first client has a pet.
        f"{client}pets/new/",
        f"{client}household/",
        first_link(page, client, rf"/app/pets/{ID}/edit/"),
        first_link(page, client, rf"/app/pets/{ID}/delete/"),
        member_page(page),
        *common,
    ]
    if role == "owner":
        manager += ["/app/audit/", "/app/settings/", "/app/security/alerts/"]
    return manager


def member_page(page: Page) -> str:
    """The demo's member (Aisha Rahman, on the monthly plan): her membership's page."""
    member = first_link(page, "/app/clients/?q=Aisha", rf"/app/clients/{ID}/")
    return first_link(page, f"{member}passes/", rf"/app/memberships/{ID}/")


@pytest.fixture
def contexts(browser: Browser, e2e_server: str) -> Iterator[dict[str, BrowserContext]]:
    opened = {
        name: browser.new_context(ignore_https_errors=True, base_url=e2e_server, viewport=size)
        for name, size in (("phone", PHONE), ("desktop", DESKTOP))
    }
    try:
        yield opened
    finally:
        for context in opened.values():
            context.close()


@pytest.mark.parametrize("role", ["owner", "manager", "staff", "client"])
def test_every_page_fits_and_passes_axe(
    role: str,
    logins: dict[str, tuple[str, str]],
    axe_source: str,
    contexts: dict[str, BrowserContext],
) -> None:
    email, password = logins[role]
    problems: list[str] = []
    for name, context in contexts.items():
        csp: list[str] = []

        def on_console(message: ConsoleMessage, seen: list[str] = csp) -> None:
            if CSP_MARKER in message.text:
                seen.append(message.text)

        context.on("console", on_console)
        page = log_in(context, email, password)
        for path in pages_of(page, role):
            answer = page.goto(path)
            status = answer.status if answer is not None else None
            assert status == 200, (role, path, status)
            problems += [f"{name} {path}: {problem}" for problem in checked(page, axe_source)]
        problems += [f"{name}: {message}" for message in csp]
    assert problems == [], "\n".join(problems)


def checked(page: Page, axe_source: str) -> list[str]:
    """What is wrong with the page shown: wider than the screen, or axe's serious findings."""
    found = []
    width = page.evaluate("document.documentElement.scrollWidth")
    screen = page.viewport_size["width"]  # type: ignore[index]
    if width > screen:
        found.append(f"{width} px wide on a {screen} px screen")
    page.evaluate(axe_source)
    return found + list(page.evaluate(AXE_RUN))


def test_the_checks_find_a_wide_page_and_a_serious_violation(
    axe_source: str, contexts: dict[str, BrowserContext]
) -> None:
    page = contexts["phone"].new_page()
    page.set_content(
        '<html lang="en"><title>t</title><main><img src="data:,">'
        '<div style="width:2000px">wide</div></main></html>'
    )
    found = checked(page, axe_source)
    assert re.fullmatch(r"20\d\d px wide on a 390 px screen", found[0]), found
    assert any(problem.startswith("image-alt (critical)") for problem in found), found


# A scheduled visit the staff login makes to the portal client (the demo's repeating walk).
SHARED_VISIT = """
import json
from django.conf import settings
from custodia.embedded import admin_connection
with admin_connection(settings.ADMIN_DATABASE, settings.DATABASES["default"]["NAME"]) as conn:
    row = conn.execute(
        "SELECT v.id FROM scheduling_visit v"
        " JOIN tenancy_membership s ON s.id = v.staff_id JOIN accounts_user su ON su.id = s.user_id"
        " JOIN tenancy_membership c ON c.client_id = v.client_id AND c.role = 'client'"
        " JOIN accounts_user cu ON cu.id = c.user_id"
        " WHERE su.email = %s AND cu.email = %s AND v.status = 'scheduled'"
        " ORDER BY v.starts_at LIMIT 1",
        [{staff!r}, {client!r}],
    ).fetchone()
print(json.dumps(str(row[0])))
"""


def test_staff_upload_a_photo_on_a_phone_and_the_client_sees_it(
    e2e_database: str,
    logins: dict[str, tuple[str, str]],
    axe_source: str,
    browser: Browser,
    e2e_server: str,
    tmp_path: Path,
) -> None:
    """Priya, on a 390 px phone, attaches a photo to her walk with Hannah's dog through the
    plain file field (the camera on a real phone); Hannah sees it in the portal's visit page."""
    from tests.scheduling.photos_support import photo_bytes

    staff_email, staff_password = logins["staff"]
    client_email, client_password = logins["client"]
    code = SHARED_VISIT.format(staff=staff_email, client=client_email)
    visit = json.loads(run_django(e2e_database, code).strip().splitlines()[-1])
    picture = tmp_path / "walk.jpg"
    picture.write_bytes(photo_bytes((1600, 1200)))

    phone = browser.new_context(ignore_https_errors=True, base_url=e2e_server, viewport=PHONE)
    try:
        page = log_in(phone, staff_email, staff_password)
        page.goto(f"/app/visits/{visit}/")
        field = page.get_by_label("Photo", exact=True)
        assert field.get_attribute("capture") == "environment"
        assert field.get_attribute("accept") == "image/*"
        field.set_input_files(str(picture))
        page.get_by_role("button", name="Add photo").click()
        expect(page.locator("ul.messages")).to_contain_text("Photo added.")
        expect(page.locator("ul.photos img")).to_have_count(1)
        assert checked(page, axe_source) == []
    finally:
        phone.close()

    portal = browser.new_context(ignore_https_errors=True, base_url=e2e_server, viewport=PHONE)
    try:
        page = log_in(portal, client_email, client_password)
        page.goto(f"/app/visits/{visit}/")
        thumbnail = page.locator("ul.photos img").first
        expect(thumbnail).to_be_visible()
        # The image loaded: the browser decoded the thumbnail the server sent.
        assert thumbnail.evaluate("img => img.complete && img.naturalWidth") == 320
        assert page.get_by_role("button", name="Add photo").count() == 0
        assert checked(page, axe_source) == []
    finally:
        portal.close()
