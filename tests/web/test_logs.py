"""Application logs: JSON lines that name their request, and never a customer's data or a secret.

The leak test drives a business owner's day through the real middleware stack (login with a wrong
and a right password, a client created, read, searched, edited, an API token made, used and
misused, refusals of every kind, a server error) with every logger at DEBUG, then looks for each
sensitive value of the day in every line, formatted both as JSON and as plain text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import path

from custodia import urls as app_urls
from custodia.clients.models import Client, phone_key
from custodia.core import requestctx
from custodia.core.logs import JsonFormatter, PlainFormatter
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import PASSWORD, TenantMatrix
from tests.test_settings import refused
from tests.web.support import logged_in

# --- A URLconf with one more page: one that fails (there is no failing page in the app) ---------

FAILURE_MESSAGE = "the test's own failure"


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(FAILURE_MESSAGE)


handler403 = app_urls.handler403
handler404 = app_urls.handler404
handler500 = app_urls.handler500
urlpatterns = [path("test-failure/", fail), *app_urls.urlpatterns]

# --- The day's sensitive values: unique, so that any one found in a log line is a leak ---------

MARK = "Qzv7Lk"
CLIENT = {
    "name": f"Quillon Marbleworth {MARK}",
    "email": f"quillon.{MARK.lower()}@leakcheck.test",
    "phone": "+1 555 0193 847",
    "address": f"77 Leakcheck Lane {MARK}",
    "notes": f"Allergic to bees {MARK}-notes",
    "instructions": f"Key in the blue pot {MARK}-instructions",
    "door_code": f"door-{MARK}-4821",
    "alarm_code": f"alarm-{MARK}-9051",
}
NEW_NOTES = f"Bees moved out {MARK}-edited"
WRONG_PASSWORD = f"wrong password {MARK}"
REFUSED_NAME = f"Refused Person {MARK}"


class Capture(logging.Handler):
    """Every record, formatted as it is emitted (the request context is gone afterwards)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.json = JsonFormatter()
        self.plain = PlainFormatter()
        self.lines: list[str] = []  # JSON
        self.texts: list[str] = []  # plain

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.json.format(record))
        self.texts.append(self.plain.format(record))


@pytest.fixture
def captured() -> Iterator[Capture]:
    """Every logger at DEBUG, into one capturing handler on the root."""
    capture = Capture()
    loggers = [logging.getLogger(name) for name in ("", "django", "django.security", "custodia")]
    loggers.append(logging.getLogger("django.request"))
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(capture)
    yield capture
    logging.getLogger().removeHandler(capture)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@dataclass
class Day:
    """The requests made, the log lines each wrote, and every secret seen along the way."""

    capture: Capture
    secrets: set[str] = field(default_factory=set)
    answered: list[tuple[str, list[str]]] = field(default_factory=list)  # (X-Request-ID, lines)

    def call(self, client: HttpsClient, method: str, url: str, **kwargs: Any) -> HttpResponse:
        """One request; its log lines are those written while it ran."""
        before = len(self.capture.lines)
        response: HttpResponse = getattr(client, method)(url, **kwargs)
        self.answered.append((response["X-Request-ID"], self.capture.lines[before:]))
        self.secrets.update(morsel.value for morsel in client.cookies.values() if morsel.value)
        return response

    def form_token(self, response: HttpResponse) -> str:
        """The CSRF token a page's form carries (a secret too)."""
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode())
        assert match, "the page has no form"
        self.secrets.add(match[1])
        return match[1]


def sensitive_values(matrix: TenantMatrix, day: Day) -> list[str]:
    """The values no log line may contain."""
    values = [*CLIENT.values(), NEW_NOTES, WRONG_PASSWORD, REFUSED_NAME, PASSWORD]
    values += [phone_key(CLIENT["phone"]), matrix.a.owner.user.email, *day.secrets]
    return values


def test_logs_carry_no_customer_data_or_secrets_and_name_their_request(
    matrix: TenantMatrix, captured: Capture, settings: Any
) -> None:
    settings.ROOT_URLCONF = __name__
    day = Day(captured)
    # A browser that checks CSRF as production does (an HTTPS form post needs a same-site Referer).
    browser = HttpsClient(
        enforce_csrf_checks=True,
        raise_request_exception=False,
        HTTP_REFERER="https://testserver/",
    )

    # Log in: a wrong password, then the right one.
    login_page = day.call(browser, "get", "/accounts/login/")
    token = day.form_token(login_page)
    credentials = {"login": matrix.a.owner.user.email, "csrfmiddlewaretoken": token}
    wrong = day.call(
        browser, "post", "/accounts/login/", data={**credentials, "password": WRONG_PASSWORD}
    )
    assert wrong.status_code == 200
    right = day.call(
        browser, "post", "/accounts/login/", data={**credentials, "password": PASSWORD}
    )
    assert right.status_code == 302

    # Create, read, search (in the query string) and edit a client.
    token = day.form_token(day.call(browser, "get", "/app/clients/new/"))
    created = day.call(
        browser, "post", "/app/clients/new/", data={**CLIENT, "csrfmiddlewaretoken": token}
    )
    assert created.status_code == 302, created.content
    detail_url = created["Location"]
    detail = day.call(browser, "get", detail_url)
    assert detail.status_code == 200 and CLIENT["door_code"] in detail.content.decode()
    for term in (CLIENT["name"], CLIENT["email"], CLIENT["phone"]):
        found = day.call(browser, "get", "/app/clients/", data={"q": term})
        assert found.status_code == 200 and CLIENT["name"] in found.content.decode()
    token = day.form_token(day.call(browser, "get", f"{detail_url}edit/"))
    edited = day.call(
        browser,
        "post",
        f"{detail_url}edit/",
        data={**CLIENT, "notes": NEW_NOTES, "csrfmiddlewaretoken": token},
    )
    assert edited.status_code == 302, edited.content

    # A change Custodia itself logs (custodia.tenancy.actions).
    token = day.form_token(day.call(browser, "get", "/app/business/security/"))
    policy = {"session_idle_minutes": "45", "csrfmiddlewaretoken": token}
    saved = day.call(browser, "post", "/app/business/security/", data=policy)
    assert saved.status_code == 302, saved.content

    # Refusals with the day's values in the body or the query string: 400, 404, 403.
    bad_search = day.call(browser, "get", "/app/clients/", data={"q": REFUSED_NAME * 10})
    assert bad_search.status_code == 400
    token = day.form_token(day.call(browser, "get", "/app/clients/new/"))
    bad_form = day.call(
        browser,
        "post",
        "/app/clients/new/",
        data={**CLIENT, "email": f"not-an-address {MARK}", "csrfmiddlewaretoken": token},
    )
    assert bad_form.status_code == 400
    missing = day.call(
        browser,
        "post",
        f"/app/clients/{uuid.uuid4()}/edit/",
        data={**CLIENT, "csrfmiddlewaretoken": token},
    )
    assert missing.status_code == 404
    no_csrf = day.call(browser, "post", "/app/clients/new/", data={**CLIENT, "name": REFUSED_NAME})
    assert no_csrf.status_code == 403
    staff = logged_in(matrix.a.staff)
    not_allowed = day.call(staff, "post", "/app/clients/new/", data={"name": REFUSED_NAME})
    assert not_allowed.status_code == 403

    # An API token: made on its page, used, and misused.
    token = day.form_token(day.call(browser, "get", "/app/tokens/"))
    made = day.call(
        browser, "post", "/app/tokens/new/", data={"name": "logs", "csrfmiddlewaretoken": token}
    )
    plain = re.search(r'value="(cst_[^"]+)"', made.content.decode())
    assert made.status_code == 200 and plain
    day.secrets.add(plain[1])
    day.secrets.add(plain[1].split("_", 2)[2])
    api = HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain[1]}", raise_request_exception=False)
    client_id = detail_url.rstrip("/").rsplit("/", 1)[1]
    listed = day.call(api, "get", "/api/v1/clients", data={"q": CLIENT["email"]})
    assert listed.status_code == 200 and listed.json()["items"][0]["id"] == client_id
    assert day.call(api, "get", f"/api/v1/clients/{client_id}").status_code == 200
    patched = day.call(
        api,
        "patch",
        f"/api/v1/clients/{client_id}",
        data=json.dumps({"address": CLIENT["address"]}),
        content_type="application/json",
    )
    assert patched.status_code == 200
    invalid = day.call(
        api,
        "post",
        "/api/v1/clients",
        data=json.dumps({"name": REFUSED_NAME * 20, "door_code": CLIENT["door_code"]}),
        content_type="application/json",
    )
    assert invalid.status_code == 422
    gone = day.call(
        api,
        "patch",
        f"/api/v1/clients/{uuid.uuid4()}",
        data=json.dumps({"notes": NEW_NOTES}),
        content_type="application/json",
    )
    assert gone.status_code == 404
    forged = plain[1][:-6] + "AAAAAA"
    day.secrets.add(forged.split("_", 2)[2])
    impostor = HttpsClient(HTTP_AUTHORIZATION=f"Bearer {forged}", raise_request_exception=False)
    refused_token = day.call(impostor, "get", "/api/v1/clients", data={"q": CLIENT["email"]})
    assert refused_token.status_code == 401

    # A server error, on a request that carries the day's values everywhere it can.
    failed = day.call(
        browser,
        "post",
        f"/test-failure/?q={CLIENT['email']}",
        data={**CLIENT, "csrfmiddlewaretoken": token},
    )
    assert failed.status_code == 500
    act(matrix.a.owner)
    assert Client.objects.filter(name=CLIENT["name"]).exists()  # the day really happened

    # Every line is JSON; those written during a request carry that response's request id.
    lines = captured.lines
    entries = [json.loads(line) for line in lines]
    assert all("\n" not in line for line in lines)
    for request_id, written in day.answered:
        for line in written:
            assert json.loads(line).get("request_id") == request_id, line
    loggers = {entry["logger"] for entry in entries}
    assert {"django.request", "django.security.csrf"} <= loggers, loggers
    assert any(name.startswith("custodia.") for name in loggers), loggers
    [failure] = [entry for entry in entries if entry.get("exc_type") == "RuntimeError"]
    assert failure["logger"] == "django.request" and failure["level"] == "ERROR"
    assert failure["request_id"] == failed["X-Request-ID"]
    assert FAILURE_MESSAGE in failure["traceback"]

    # Nothing sensitive in any line, as JSON or as text; nor Django's request objects.
    for value in sensitive_values(matrix, day):
        for line in [*lines, *captured.texts]:
            assert value.casefold() not in line.casefold(), f"{value!r} leaked into: {line}"
    assert not any("WSGIRequest" in line for line in lines)


# --- The formatter on its own -------------------------------------------------------------------


def record(message: str = "done", *args: object, **extra: Any) -> logging.LogRecord:
    """A record as `logging.getLogger("custodia.test").info(message, *args, extra=extra)` makes."""
    logger = logging.getLogger("custodia.test")
    return logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, message, args, None, extra=extra
    )


def test_a_line_outside_a_request_has_time_level_logger_and_message() -> None:
    entry = json.loads(JsonFormatter().format(record("done %s", 3)))
    assert set(entry) == {"time", "level", "logger", "message"}
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "INFO",
        "custodia.test",
        "done 3",
    )
    assert entry["time"].endswith("Z")
    moment = dt.datetime.fromisoformat(entry["time"])
    assert moment.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - moment) < dt.timedelta(minutes=1)


def test_a_line_inside_a_request_names_it_and_an_extra_cannot_forge_it() -> None:
    token = requestctx.CURRENT.set(requestctx.RequestInfo("a1b2", "192.0.2.1", "test"))
    try:
        entry = json.loads(JsonFormatter().format(record(request_id="forged")))
        text = PlainFormatter().format(record())
    finally:
        requestctx.CURRENT.reset(token)
    assert entry["request_id"] == "a1b2"
    assert "INFO custodia.test [a1b2] done" in text
    assert "[-] done" in PlainFormatter().format(record())


def test_plain_json_extras_are_kept_and_other_objects_left_out() -> None:
    class Holder:
        def __repr__(self) -> str:
            return f"<Holder {MARK}>"

    line = JsonFormatter().format(
        record(
            count=2,
            ids=["x", 1, None],
            detail={"ok": True, "share": 0.5},
            holder=Holder(),
            pair=(1, Holder()),
            ratio=float("nan"),
        )
    )
    entry = json.loads(line)
    assert entry["count"] == 2 and entry["ids"] == ["x", 1, None]
    assert entry["detail"] == {"ok": True, "share": 0.5}
    assert not {"holder", "pair", "ratio"} & set(entry) and MARK not in line


def test_an_exception_is_named_with_its_traceback_on_one_line() -> None:
    failed = record("lookup failed\nsecond line")
    try:
        raise KeyError("missing")
    except KeyError:
        failed.exc_info = sys.exc_info()
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["exc_type"] == "KeyError" and entry["message"] == "lookup failed\nsecond line"
    assert entry["traceback"].startswith("Traceback (most recent call last):")
    assert entry["traceback"].endswith("KeyError: 'missing'")


def test_a_django_answer_logged_after_the_middleware_still_names_its_request(rf: Any) -> None:
    # Django logs a 4xx/5xx answer once the middleware has returned, passing the request along.
    request = rf.get("/somewhere/")
    request.request_id = "c3d4"
    entry = json.loads(
        JsonFormatter().format(record("Not Found: %s", "/somewhere/", request=request))
    )
    assert entry["request_id"] == "c3d4" and "request" not in entry


@pytest.mark.parametrize(
    ("env", "formatter"),
    [({}, "JsonFormatter"), ({"CUSTODIA_LOG_FORMAT": "plain"}, "PlainFormatter")],
)
def test_the_console_writes_json_unless_told_otherwise_and_django_adds_no_handler(
    tmp_path: Any, env: dict[str, str], formatter: str
) -> None:
    code = (
        "import logging, django; django.setup(); "
        "[console] = logging.getLogger().handlers; "
        "print(type(console.formatter).__name__, logging.getLogger('django').handlers)"
    )
    clean = {"PATH": os.environ.get("PATH", ""), "CUSTODIA_VAR_DIR": str(tmp_path), **env}
    clean["DJANGO_SETTINGS_MODULE"] = "custodia.settings"
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [formatter, "[]"]


def test_an_unknown_log_format_is_refused(tmp_path: Any) -> None:
    message = refused(tmp_path, {"CUSTODIA_LOG_FORMAT": "xml"})
    assert message == "CUSTODIA_LOG_FORMAT must be json or plain."


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("Internal Server Error: /invite/ab12cd34/s3cretInvite/", "s3cretInvite"),
        ("Forbidden (CSRF token missing.): /app/unlock/unl0ckT0ken/", "unl0ckT0ken"),
        ("Internal Server Error: /accounts/password/reset/key/1a-r3setKey/", "r3setKey"),
        ("Not Found: /calendar/0123456789ab/fE3d_s3cret-Feed.ics", "fE3d_s3cret-Feed"),
    ],
)
def test_secret_bearing_paths_are_redacted(message: str, secret: str) -> None:
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, message, None, None)
    for formatter in (JsonFormatter(), PlainFormatter()):
        line = formatter.format(record)
        assert secret not in line
        assert "[redacted]" in line
