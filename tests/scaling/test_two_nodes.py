"""Two `custodia serve` nodes, one PostgreSQL, one Redis: the web tier behaves as one node.

Node A and node B are two real servers (granian over TLS, each with its own ports, hashing pool,
card vault and job worker) on one database, sharing the machine's Redis (127.0.0.1:6379, under a
key prefix of this run, deleted after each test) and one keystore directory, as several hosts
behind a load balancer would (docs/scaling.md). Every check is a real HTTP request: a session
or a limit started on one node is carried on, or refused, on the other.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from allauth.mfa.totp.internal.auth import format_hotp_value, generate_totp_secret, hotp_value
from django.conf import settings

from custodia import embedded
from custodia.crypto.keyring import version_of
from tests import caches as caches_for_tests
from tests.mail import CollectingHandler, SmtpServer, free_port
from tests.servers import (
    admin_database,
    custodia,
    django_environment,
    prepare_server_database,
    run_django,
    start_server,
    tls_client_context,
)

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "amber quarry lantern 5521"
WRONG = "not the password at all 1"
REAUTHENTICATION_SECONDS = 10
API_RATE_LIMIT = 30
LOCKED = "Too many failed login attempts"
BUSY = "Too many sign-ins are being checked right now"


@dataclass
class Node:
    name: str
    url: str
    port: int


@dataclass
class Cluster:
    db_name: str
    a: Node
    b: Node
    smtp: SmtpServer
    cache_prefix: str
    owners: dict[str, str] = field(default_factory=dict)  # email -> business slug


@dataclass
class Answer:
    status: int
    location: str
    body: str


class Browser:
    """One person's browser: its cookies go to whichever node it asks (same host, other port,
    as a browser sends them to every node behind one name)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request(
        self, node: Node, method: str, path: str, form: dict[str, str] | None = None
    ) -> Answer:
        connection = http.client.HTTPSConnection(
            "localhost", node.port, context=tls_client_context(), timeout=60
        )
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(
                {"csrfmiddlewaretoken": self.cookies.get("__Host-csrftoken", ""), **form}
            )
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = node.url + path
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in header.lower() or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return Answer(response.status, response.headers.get("Location", ""), text)

    def get(self, node: Node, path: str) -> Answer:
        return self.request(node, "GET", path)

    def post(self, node: Node, path: str, form: dict[str, str]) -> Answer:
        if "__Host-csrftoken" not in self.cookies:
            self.get(node, "/accounts/login/")
        return self.request(node, "POST", path, form)

    def login(self, node: Node, email: str, password: str = PASSWORD) -> Answer:
        """A password sign-in (tried again while the node's hashing pool answers 503)."""
        for _ in range(20):
            answer = self.post(node, "/accounts/login/", {"login": email, "password": password})
            if answer.status != 503:
                return answer
            time.sleep(1)
        raise AssertionError(f"{node.name} kept answering 503 to sign-ins")

    def signed_in(self, node: Node) -> bool:
        answer = self.get(node, "/app/")
        assert answer.status in (200, 302), answer
        return answer.status == 200


def _smtp() -> Iterator[SmtpServer]:
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


@pytest.fixture(scope="module")
def cluster(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two nodes on a database of their own, mailing through one SMTP server, with a keystore,
    a KEK keyring and a checkpoint log of their own (the test rotates keys: never var/'s)."""
    keys = tmp_path_factory.mktemp("twonode-keys")
    with pytest.MonkeyPatch.context() as patch:
        # tests/servers.py hands both to every server and command it starts.
        patch.setenv("CUSTODIA_KEK_KEYRING_FILE", str(keys / "kek-keyring.json"))
        patch.setattr(settings, "KEYSTORE_DIR", keys / "keystore")
        # The log of signed checkpoints kept outside the database is this install's alone:
        # var/'s is written by every server on the machine, whatever database it serves.
        patch.setenv("CUSTODIA_AUDIT_CHECKPOINT_LOG_FILE", str(keys / "audit_checkpoints.jsonl"))
        yield from _cluster()


def _cluster() -> Iterator[Cluster]:
    caches_for_tests.require_redis()
    name = f"custodia_twonode_{os.getpid()}"
    prefix = f"custodia-twonode-{os.getpid()}-{secrets.token_hex(4)}"
    prepare_server_database(name)
    mail = _smtp()
    smtp = next(mail)
    stops = []
    try:
        env = {
            "DJANGO_SETTINGS_MODULE": "tests.scaling.node_settings",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "CUSTODIA_REDIS_URL": caches_for_tests.REDIS_URL,
            "CUSTODIA_TEST_CACHE_PREFIX": prefix,
            "CUSTODIA_TEST_REAUTHENTICATION_SECONDS": str(REAUTHENTICATION_SECONDS),
            "CUSTODIA_API_RATE_LIMIT": str(API_RATE_LIMIT),
            # One hash at a time and none waiting, per node: the bound is seen at once.
            "CUSTODIA_HASH_CONCURRENCY": "1",
            "CUSTODIA_HASH_QUEUE": "0",
            "CUSTODIA_SMTP_HOST": "127.0.0.1",
            "CUSTODIA_SMTP_PORT": str(smtp.port),
            "CUSTODIA_SMTP_STARTTLS": "0",
            "CUSTODIA_SMTP_SSL": "0",
        }
        nodes = []
        for label in ("A", "B"):
            url, stop = start_server(name, env, http_port=free_port())
            stops.append(stop)
            nodes.append(Node(label, url, int(url.rsplit(":", 1)[1])))
        yield Cluster(name, nodes[0], nodes[1], smtp, prefix)
    finally:
        for stop in stops:
            stop()
        next(mail, None)
        _forget_cache(prefix)
        embedded.drop_database(admin_database(), name)


def _forget_cache(prefix: str) -> None:
    client = caches_for_tests.redis_client()
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def nodes(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, with the limits this test counted in Redis forgotten afterwards."""
    yield cluster
    _forget_cache(cluster.cache_prefix)


def owner(cluster: Cluster, label: str) -> str:
    """The email of a new business's owner (password PASSWORD), made for one test."""
    email = f"{label}-{secrets.token_hex(3)}@twonode.example.test"
    password_file = Path(f"/tmp/twonode-{os.getpid()}-{secrets.token_hex(4)}")  # noqa: S108
    password_file.write_text(PASSWORD + "\n")
    try:
        created = custodia(
            cluster.db_name, "createbusiness", "--name", label.title(), "--owner-email", email,
            "--password-file", str(password_file),
        )  # fmt: skip
    finally:
        password_file.unlink()
    cluster.owners[email] = created.strip().splitlines()[-1]
    return email


def signed_in_browser(node: Node, email: str) -> Browser:
    browser = Browser()
    answer = browser.login(node, email)
    assert answer.status == 302 and "__Host-sessionid" in browser.cookies, answer
    assert browser.signed_in(node)
    return browser


# --- Sessions ---------------------------------------------------------------------------------


def test_a_session_made_on_a_works_on_b_and_signing_out_on_a_ends_it_on_b(nodes: Cluster) -> None:
    email = owner(nodes, "sessions")
    browser = signed_in_browser(nodes.a, email)
    assert browser.signed_in(nodes.b)
    cookie = browser.cookies["__Host-sessionid"]
    answer = browser.post(nodes.a, "/accounts/logout/", {})
    assert answer.status == 302
    # The old cookie, replayed to B as a thief would: the session is gone from the database.
    replay = Browser()
    replay.cookies = {"__Host-sessionid": cookie}
    assert not replay.signed_in(nodes.b)
    assert not browser.signed_in(nodes.b)


def test_ending_the_other_sessions_on_a_ends_them_on_b(nodes: Cluster) -> None:
    email = owner(nodes, "revoke")
    laptop = signed_in_browser(nodes.a, email)
    phone = signed_in_browser(nodes.b, email)
    assert phone.signed_in(nodes.b)
    answer = laptop.post(nodes.a, "/app/security/sessions/end-others/", {})
    assert answer.status == 302
    assert not phone.signed_in(nodes.b)
    assert not phone.signed_in(nodes.a)
    assert laptop.signed_in(nodes.b)


# --- Step-up ----------------------------------------------------------------------------------

STEP_UP = "/app/step-up/?next=%2Fapp%2Ftokens%2F"


def test_a_step_up_on_a_counts_on_b_and_expires_on_b_too(nodes: Cluster) -> None:
    email = owner(nodes, "stepup")
    browser = signed_in_browser(nodes.a, email)
    # The sign-in's own proof lapses after REAUTHENTICATION_SECONDS, on either node.
    time.sleep(REAUTHENTICATION_SECONDS + 1)
    asked = browser.get(nodes.b, STEP_UP)
    assert asked.status == 302 and asked.location.startswith("/accounts/reauthenticate/"), asked
    # Re-authenticated on A ...
    done = browser.post(
        nodes.a, "/accounts/reauthenticate/?next=%2Fapp%2Ftokens%2F", {"password": PASSWORD}
    )
    assert done.status == 302, done
    # ... counts on B,
    fresh = browser.get(nodes.b, STEP_UP)
    assert fresh.status == 302 and fresh.location == "/app/tokens/", fresh
    # until it expires there too.
    time.sleep(REAUTHENTICATION_SECONDS + 1)
    stale = browser.get(nodes.b, STEP_UP)
    assert stale.status == 302 and stale.location.startswith("/accounts/reauthenticate/"), stale


# --- Sign-in limits ---------------------------------------------------------------------------


def test_failures_split_between_the_nodes_pause_the_name_at_the_one_node_threshold(
    nodes: Cluster,
) -> None:
    email = owner(nodes, "lockout")
    attacker = Browser()
    for number in range(settings.LOGIN_LOCKOUT_THRESHOLD - 1):
        node = (nodes.a, nodes.b)[number % 2]
        answer = attacker.login(node, email, WRONG)
        assert answer.status == 200 and LOCKED not in answer.body, number
    # One failure short of the threshold, the right password still signs in, on either node ...
    assert signed_in_browser(nodes.b, email).signed_in(nodes.a)
    # ... which ends the series: the threshold's worth of failures, split again, pauses the name.
    for number in range(settings.LOGIN_LOCKOUT_THRESHOLD):
        answer = attacker.login((nodes.b, nodes.a)[number % 2], email, WRONG)
        assert answer.status == 200, number
    for node in (nodes.a, nodes.b):
        owner_browser = Browser()
        refused = owner_browser.login(node, email)
        assert refused.status == 200 and LOCKED in refused.body, node.name
        assert not owner_browser.signed_in(node)


def test_failures_from_one_address_split_between_the_nodes_count_against_its_limit(
    nodes: Cluster,
) -> None:
    """allauth's per-address limit (in Redis): ten failures a minute, five on each node, and
    the right password next meets an emailed code instead of a session."""
    email = owner(nodes, "address")
    attacker = Browser()
    for number in range(10):
        # Two guesses per name: no name's own series comes near its pause.
        name = f"guess-{number // 2}-{secrets.token_hex(2)}@twonode.example.test"
        answer = attacker.login((nodes.a, nodes.b)[number % 2], name, WRONG)
        assert answer.status == 200, number
    for node in (nodes.a, nodes.b):
        challenged = Browser()
        answer = challenged.login(node, email)
        assert answer.status == 302 and "/login/code/confirm/" in answer.location, answer
        assert not challenged.signed_in(node)


def test_a_totp_code_used_on_a_is_refused_on_b(nodes: Cluster) -> None:
    email = owner(nodes, "totp")
    secret = generate_totp_secret()
    run_django(
        nodes.db_name,
        "from allauth.mfa.totp.internal.auth import TOTP\n"
        "from custodia.accounts.models import User\n"
        f"TOTP.activate(User.objects.get(email={email!r}), {secret!r})\n",
    )
    # Both uses of the code fall in one 30-second step (checked at the end).
    if time.time() % 30 > 5:
        time.sleep(30 - time.time() % 30 + 0.5)
    step = int(time.time()) // 30
    code = format_hotp_value(hotp_value(secret, step))
    first = Browser()
    answer = first.login(nodes.a, email)
    assert answer.status == 302 and answer.location.startswith("/accounts/2fa/authenticate/"), (
        answer
    )
    used = first.post(nodes.a, "/accounts/2fa/authenticate/", {"code": code})
    assert used.status == 302 and first.signed_in(nodes.a), used
    # Someone who saw the code, with the password, on the other node in the same step.
    thief = Browser()
    answer = thief.login(nodes.b, email)
    assert answer.status == 302 and answer.location.startswith("/accounts/2fa/authenticate/"), (
        answer
    )
    replay = thief.post(nodes.b, "/accounts/2fa/authenticate/", {"code": code})
    assert replay.status == 200 and "Incorrect code" in replay.body, replay
    assert int(time.time()) // 30 == step, "the code's step ended before its replay"
    assert not thief.signed_in(nodes.b)


# --- API rate limit ---------------------------------------------------------------------------


def _api(
    node: Node, token: str, method: str, path: str, body: dict[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPSConnection(
        "localhost", node.port, context=tls_client_context(), timeout=60
    )
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        connection.close()


def api_token(cluster: Cluster, email: str) -> str:
    created = custodia(
        cluster.db_name, "token", "create", "--email", email,
        "--scopes", "clients:record:read,clients:record:write,clients:access:read",
    )  # fmt: skip
    return created.strip().splitlines()[-1]


def test_the_api_rate_limit_counts_requests_to_both_nodes(nodes: Cluster) -> None:
    token = api_token(nodes, owner(nodes, "apilimit"))
    statuses = [
        _api((nodes.a, nodes.b)[number % 2], token, "GET", "/api/v1/clients")[0]
        for number in range(API_RATE_LIMIT)
    ]
    assert statuses == [200] * API_RATE_LIMIT
    for node in (nodes.a, nodes.b):
        status, body = _api(node, token, "GET", "/api/v1/clients")
        assert status == 429 and "at most 30 a minute" in str(body["detail"]), body


# --- Password hashing -------------------------------------------------------------------------


def hashing_processes(node: Node) -> list[int]:
    """The argon2id processes of a node's hashing pool (found by the public URL its environment
    names: both nodes serve one database)."""
    marker = f"CUSTODIA_PUBLIC_URL={node.url}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"custodia.accounts.hashpool" in command and marker in environ:
            return [
                int(child)
                for task in (entry / "task").iterdir()
                for child in (task / "children").read_text().split()
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
            ]
    raise AssertionError(f"no hashing pool found for node {node.name}")


def test_each_node_bounds_its_own_password_hashing(nodes: Cluster) -> None:
    """The hashing pool is a node's own (its cores): with node A's one hashing process held
    (stopped, as a hash that never ends), A answers sign-ins 503, and B signs the person in."""
    email = owner(nodes, "hashing")
    (process,) = hashing_processes(nodes.a)
    os.kill(process, signal.SIGSTOP)
    try:
        refused = Browser()
        busy = refused.post(nodes.a, "/accounts/login/", {"login": email, "password": PASSWORD})
        assert busy.status == 503 and BUSY in busy.body, busy
        assert "__Host-sessionid" not in refused.cookies
        other = Browser()
        answer = other.post(nodes.b, "/accounts/login/", {"login": email, "password": PASSWORD})
        assert answer.status == 302 and other.signed_in(nodes.b), answer
        assert Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    finally:
        os.kill(process, signal.SIGCONT)
    # A's pool works again once its process does.
    assert signed_in_browser(nodes.a, email).signed_in(nodes.a)


# --- Keys -------------------------------------------------------------------------------------


def _sealed_email(cluster: Cluster, client_id: object) -> bytes:
    """A client's email as stored (sealed), read as the database's administrator."""
    with embedded.admin_connection(admin_database(), cluster.db_name) as connection:
        row = connection.execute(
            "SELECT email FROM clients_client WHERE id = %s", (str(client_id),)
        ).fetchone()
    assert row is not None
    return bytes(row[0])


def _new_client(node: Node, token: str, email: str) -> str:
    status, body = _api(node, token, "POST", "/api/v1/clients", {"name": email, "email": email})
    assert status == 201, body
    return str(body["id"])


def test_a_key_rotation_through_a_is_used_by_b_for_new_writes_without_restart(
    nodes: Cluster,
) -> None:
    owner_email = owner(nodes, "rotation")
    token = api_token(nodes, owner_email)
    written = {_new_client(nodes.b, token, "before@rotation.example.test"): "before"}
    # B has the business's keys cached now; the rotation runs on A's host (`custodia keys`).
    (before,) = written
    old = version_of(_sealed_email(nodes, before))
    custodia(nodes.db_name, "keys", "rotate-business", nodes.owners[owner_email])
    assert version_of(_sealed_email(nodes, before)) == old + 1  # re-encrypted by the rotation
    by_b = _new_client(nodes.b, token, "by-b@rotation.example.test")
    assert version_of(_sealed_email(nodes, by_b)) == old + 1  # B seals under the new version
    by_a = _new_client(nodes.a, token, "by-a@rotation.example.test")
    written |= {by_b: "by-b", by_a: "by-a"}
    for client_id, local in written.items():
        for node in (nodes.a, nodes.b):
            status, read = _api(node, token, "GET", f"/api/v1/clients/{client_id}")
            assert status == 200, read
            assert read["email"] == f"{local}@rotation.example.test", (node.name, read)
    # A new key-encryption key, made and used to re-wrap every data key on A's host: B loads
    # the re-wrapped keys under it and keeps reading and writing, without a restart.
    developers = Path(settings.KEK_KEYRING_FILE).stat().st_mtime_ns
    custodia(nodes.db_name, "keys", "rotate-kek")
    assert Path(os.environ["CUSTODIA_KEK_KEYRING_FILE"]).exists()  # the test's own keyring
    assert Path(settings.KEK_KEYRING_FILE).stat().st_mtime_ns == developers
    after_kek = _new_client(nodes.b, token, "after-kek@rotation.example.test")
    for client_id, local in (*written.items(), (after_kek, "after-kek")):
        status, read = _api(nodes.b, token, "GET", f"/api/v1/clients/{client_id}")
        assert status == 200 and read["email"] == f"{local}@rotation.example.test", read


# --- Audit ------------------------------------------------------------------------------------


def test_parallel_writes_through_both_nodes_keep_one_valid_audit_chain(nodes: Cluster) -> None:
    email = owner(nodes, "audit")
    token = api_token(nodes, email)
    created: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def write(node: Node, number: int) -> None:
        for sequence in range(4):
            status, body = _api(
                node,
                token,
                "POST",
                "/api/v1/clients",
                {"name": f"Chain {number}-{sequence}", "door_code": f"{number}{sequence}"},
            )
            with lock:
                (created if status == 201 else failures).append(str(body.get("id", body)))

    writers = [
        threading.Thread(target=write, args=((nodes.a, nodes.b)[n % 2], n)) for n in range(6)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
    assert not failures and len(created) == 24
    with embedded.admin_connection(admin_database(), nodes.db_name) as connection:
        events = connection.execute(
            "SELECT count(*) FROM audit_auditevent WHERE action = 'client.create'"
            " AND target_id = ANY(%s)",
            (created,),
        ).fetchone()
    assert events is not None and events[0] == 24
    # One chain for the business, every event in it, and every business's chain valid.
    report = audit_verify(nodes, "--business", nodes.owners[email])
    match = re.search(r"^OK .*: (\d+) events", report, re.MULTILINE)
    assert match is not None and int(match.group(1)) >= 24, report
    everything = audit_verify(nodes)
    assert "BROKEN" not in everything, everything


def audit_verify(cluster: Cluster, *args: str) -> str:
    """`custodia audit verify ARGS`'s report; a failure names what it found."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "custodia.cli", "audit", "verify", *args],
        capture_output=True,
        text=True,
        env=django_environment(cluster.db_name),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout
