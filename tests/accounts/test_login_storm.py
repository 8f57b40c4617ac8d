"""A login storm against the real server (`custodia serve`: granian, the hashing pool, TLS).

Functional, not timed: while many threads post logins as fast as they can, a signed-in page keeps
answering 200; every login is a success or the clear busy answer (503, Retry-After), never a 500
and never a wrong password let in. Then a hashing process is killed (SIGKILL) in the middle of a
login's hash: that login is refused with the same 503, and the next one signs in.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from custodia import embedded
from tests.servers import (
    create_business,
    prepare_server_database,
    run_django,
    start_server,
    tls_client_context,
)

ROOT = Path(__file__).resolve().parents[2]
OWNER = "owner@storm.example.test"
OTHER = "other@storm.example.test"
SLOW = "slow@storm.example.test"
PASSWORD = "grey lantern orchard 8812"
# Verifying this costs 100 logins' passes: seconds, time enough to kill the process hashing it.
SLOW_HASH = "argon2$argon2id$v=19$m=19456,t=200,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43
STORM_THREADS = 12
QUIET_REQUESTS = 30
BUSY = "Too many sign-ins are being checked right now"


@dataclass
class Server:
    db_name: str
    base_url: str
    port: int
    csrf_cookie: str
    csrf_token: str


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[Server]:
    """`custodia serve` with one hashing process and a queue of one, over a database of its own
    holding three owners (one whose stored hash takes seconds to check)."""
    name = f"custodia_storm_{os.getpid()}"
    prepare_server_database(name)
    try:
        for slug, email in (("Storm", OWNER), ("Other", OTHER), ("Slow", SLOW)):
            create_business(name, slug, email, PASSWORD)
        run_django(
            name,
            "from custodia.accounts.models import User\n"
            f"User.objects.filter(email={SLOW!r}).update(password={SLOW_HASH!r})\n",
        )
        base_url, stop = start_server(
            name,
            {
                "DJANGO_SETTINGS_MODULE": "tests.accounts.storm_settings",
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                "CUSTODIA_HASH_CONCURRENCY": "1",
                "CUSTODIA_HASH_QUEUE": "1",
            },
        )
        try:
            port = int(base_url.rsplit(":", 1)[1])
            cookie, token = csrf_pair(port)
            yield Server(name, base_url, port, cookie, token)
        finally:
            stop()
    finally:
        admin = dict(settings.ADMIN_DATABASE)
        if settings.EMBEDDED_DATABASE:
            admin["HOST"] = str(embedded.embedded_socket_dir(settings.EMBEDDED_PGDATA))
        embedded.drop_database(admin, name)


def connect(port: int) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("localhost", port, context=tls_client_context(), timeout=60)


def csrf_pair(port: int) -> tuple[str, str]:
    """The login page's CSRF cookie and form token (reusable for many posts)."""
    connection = connect(port)
    connection.request("GET", "/accounts/login/")
    response = connection.getresponse()
    page = response.read().decode()
    cookie = next(
        part.split("=", 1)[1]
        for header in response.headers.get_all("Set-Cookie") or []
        for part in [header.split(";", 1)[0]]
        if part.startswith("__Host-csrftoken=")
    )
    token = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    connection.close()
    return cookie, token


@dataclass
class Answer:
    status: int
    location: str
    retry_after: str | None
    session: bool
    body: str


def post_login(
    server: Server, email: str, password: str, connection: http.client.HTTPSConnection | None = None
) -> Answer:
    own = connection is None
    connection = connection or connect(server.port)
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": server.csrf_token, "login": email, "password": password}
    )
    connection.request(
        "POST",
        "/accounts/login/",
        body=body,
        headers={
            "Cookie": f"__Host-csrftoken={server.csrf_cookie}",
            "Referer": server.base_url + "/accounts/login/",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    response = connection.getresponse()
    text = response.read().decode(errors="replace")
    cookies = response.headers.get_all("Set-Cookie") or []
    if own:
        connection.close()
    return Answer(
        response.status,
        response.headers.get("Location", ""),
        response.headers.get("Retry-After"),
        any(c.startswith("__Host-sessionid=") for c in cookies),
        text,
    )


def session_of(server: Server) -> str:
    """A signed-in owner's session cookie, from a real login (retried while the pool is busy)."""
    connection = connect(server.port)
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": server.csrf_token, "login": OWNER, "password": PASSWORD}
    )
    for _ in range(20):
        connection.request(
            "POST",
            "/accounts/login/",
            body=body,
            headers={
                "Cookie": f"__Host-csrftoken={server.csrf_cookie}",
                "Referer": server.base_url + "/accounts/login/",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        response = connection.getresponse()
        response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            if header.startswith("__Host-sessionid="):
                connection.close()
                return header.split(";", 1)[0]
        time.sleep(1)
    raise AssertionError("the owner could not sign in")


def assert_busy(answer: Answer) -> None:
    assert answer.status == 503
    assert answer.retry_after == "2"
    assert BUSY in answer.body
    assert not answer.session


def test_a_signed_in_page_keeps_answering_through_a_login_storm(server: Server) -> None:
    cookie = session_of(server)
    stop = threading.Event()
    right: list[Answer] = []
    wrong: list[Answer] = []
    failures: list[BaseException] = []

    def storm(index: int) -> None:
        connection = connect(server.port)
        try:
            turn = 0
            while not stop.is_set():
                turn += 1
                # Every fourth login from a third of the threads is a wrong guess, at a real
                # account or at a name nobody has.
                if index % 3 == 0 and turn % 4 == 0:
                    email = OTHER if turn % 8 == 0 else f"nobody{index}@storm.example.test"
                    wrong.append(post_login(server, email, "not the password", connection))
                else:
                    right.append(post_login(server, OWNER, PASSWORD, connection))
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=storm, args=(i,)) for i in range(STORM_THREADS)]
    for thread in threads:
        thread.start()
    quiet: list[int] = []
    try:
        time.sleep(1)  # the storm is under way
        page = connect(server.port)
        for _ in range(QUIET_REQUESTS):
            page.request("GET", "/security/", headers={"Cookie": cookie})
            response = page.getresponse()
            response.read()
            quiet.append(response.status)
        page.close()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not failures, failures
    assert quiet == [200] * QUIET_REQUESTS
    statuses = Counter(a.status for a in right + wrong)
    assert set(statuses) <= {200, 302, 503}, statuses
    for answer in right:
        if answer.status == 302:
            assert answer.session and "/accounts/login/" not in answer.location
        else:
            assert_busy(answer)
    for answer in wrong:
        assert not answer.session
        if answer.status == 503:
            assert_busy(answer)
        else:  # the form again, with its error
            assert answer.status == 200 and "/accounts/login/" not in answer.location
    # The bound was met (some logins were turned away) and logins still got through it.
    assert statuses[503] > 0, statuses
    assert sum(a.status == 302 for a in right) > 0, statuses
    assert wrong, "no wrong guess was sent"


def pool_processes(db_name: str) -> tuple[int, list[int]]:
    """This server's hashing pool and its argon2id processes (found by the database it serves,
    which its environment names: other servers may run on the machine)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"custodia.accounts.hashpool" in command and (
            f"CUSTODIA_DB_NAME={db_name}".encode() in environ
        ):
            workers = []
            for task in (entry / "task").iterdir():
                for child in (task / "children").read_text().split():
                    if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                        workers.append(int(child))
            return int(entry.name), workers
    raise AssertionError("no hashing pool found for this server")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_a_hashing_process_killed_mid_login_fails_closed_and_the_pool_recovers(
    server: Server,
) -> None:
    pool, (victim,) = pool_processes(server.db_name)
    answers: list[Answer] = []
    login = threading.Thread(target=lambda: answers.append(post_login(server, SLOW, PASSWORD)))
    before = cpu_ticks(victim)
    login.start()
    deadline = time.monotonic() + 60
    while cpu_ticks(victim) < before + 10:  # a tenth of a second into its hash
        assert time.monotonic() < deadline, "the login's hash never started"
        time.sleep(0.02)
    os.kill(victim, signal.SIGKILL)
    login.join(timeout=60)
    (answer,) = answers
    assert_busy(answer)
    # The pool is still there, with a new process; the next login signs in.
    for _ in range(20):
        answer = post_login(server, OWNER, PASSWORD)
        if answer.status != 503:
            break
        time.sleep(0.5)
    assert answer.status == 302 and answer.session
    same_pool, workers = pool_processes(server.db_name)
    assert same_pool == pool and workers and victim not in workers
