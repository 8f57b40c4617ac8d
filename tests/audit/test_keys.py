"""The checkpoint signing key: rotation keeps old public keys in the ring so older checkpoints
still verify; an unknown or retired key does not; and the signer can live on another host
(`custodia audit signer serve` on a real local port), the verifying host holding public keys
only."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from custodia.audit import chain, keys
from custodia.audit.signer import signer_server
from tests.audit.test_chain import _events, _owner_sql

pytestmark = pytest.mark.django_db(databases=["default", "owner"])
OWNER = chain.USING


@pytest.fixture(autouse=True)
def own_keys(settings: Any, tmp_path: Path) -> Path:
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "signer.pem"
    settings.AUDIT_CHECKPOINT_LOG_FILE = tmp_path / "keys" / "checkpoints.jsonl"
    settings.AUDIT_KEY_RING_FILE = None
    settings.AUDIT_SIGNER = "local"
    return tmp_path


def key_ids(tenant: uuid.UUID) -> list[str]:
    with connections[OWNER].cursor() as cursor:
        cursor.execute(
            "SELECT key_id FROM audit_checkpoint WHERE tenant_id = %s ORDER BY id", [tenant]
        )
        return [row[0] for row in cursor.fetchall()]


def rotate() -> str:
    out = StringIO()
    call_command("audit", "rotate-signing-key", stdout=out)
    return out.getvalue()


def test_checkpoints_across_rotations_all_verify(settings: Any) -> None:
    tenant = uuid.uuid4()
    _events(tenant, 2)
    chain.make_checkpoint(tenant)
    first = key_ids(tenant)[0]
    assert first in rotate()
    _events(tenant, 2)
    chain.make_checkpoint(tenant)
    rotate()
    _events(tenant, 2)
    chain.make_checkpoint(tenant)
    used = key_ids(tenant)
    assert len(set(used)) == 3 and used[0] == first
    report = chain.verify_chain(tenant)
    assert report.ok, report.problems
    assert report.checkpoints == 3
    # The ring holds public keys only, with their validity: the old ones closed, one current.
    ring = json.loads(keys.ring_path().read_text())
    assert [entry["id"] for entry in ring["keys"]] == used
    assert [entry["valid_until"] is None for entry in ring["keys"]] == [False, False, True]
    assert "PRIVATE" not in keys.ring_path().read_text()
    # The old private key is gone from this host: only the newest signs.
    current = keys.signing_key()
    assert keys.key_id(current.public_key()) == used[2]


def test_a_checkpoint_of_a_key_removed_from_the_ring_fails() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 2)
    made = chain.make_checkpoint(tenant)
    first = key_ids(tenant)[0]
    rotate()
    ring = json.loads(keys.ring_path().read_text())
    ring["keys"] = [entry for entry in ring["keys"] if entry["id"] != first]
    keys.ring_path().write_text(json.dumps(ring))
    messages = [problem.message for problem in chain.verify_chain(tenant).problems]
    assert messages == [
        f"Checkpoint {made}: it was signed by a key the key ring does not hold ({first})."
    ]
    out = StringIO()
    with pytest.raises(CommandError, match="does not verify"):
        call_command("audit", "verify", stdout=out)


def test_a_retired_key_cannot_sign_new_checkpoints(settings: Any, tmp_path: Path) -> None:
    """Someone who kept a copy of the old private key signs a checkpoint after the rotation."""
    tenant = uuid.uuid4()
    _events(tenant, 2)
    chain.make_checkpoint(tenant)
    stolen = tmp_path / "stolen.pem"
    shutil.copy(settings.AUDIT_SIGNING_KEY_FILE, stolen)
    rotate()
    _events(tenant, 1)
    settings.AUDIT_KEY_RING_FILE = keys.ring_path()
    settings.AUDIT_SIGNING_KEY_FILE = stolen
    with pytest.raises(chain.ChainBroken, match="not the current key of the ring"):
        chain.make_checkpoint(tenant)
    # Forged by hand, straight into the table: its date is past the old key's validity.
    old = serialization.load_pem_private_key(stolen.read_bytes(), password=None)
    statement = json.dumps(
        {
            "heads": [],
            "made_at": "2099-01-01T00:00:00+00:00",
            "previous": "",
            "reason": "manual",
            "tenant": str(tenant),
            "v": 1,
        }
    )
    with connections[OWNER].cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_checkpoint (tenant_id, made_at, reason, statement, signature,"
            " key_id) VALUES (%s, now(), 'manual', %s, %s, %s) RETURNING id",
            [tenant, statement, old.sign(statement.encode()), keys.key_id(old.public_key())],
        )
        forged = cursor.fetchone()[0]
    messages = [problem.message for problem in chain.verify_chain(tenant).problems]
    assert any(
        message.startswith(f"Checkpoint {forged}: it is dated outside the validity")
        for message in messages
    )


def test_a_replaced_key_file_is_refused_once_there_is_a_ring(settings: Any) -> None:
    tenant = uuid.uuid4()
    _events(tenant, 1)
    rotate()
    settings.AUDIT_SIGNING_KEY_FILE.unlink()
    with pytest.raises(chain.ChainBroken, match="lists signing keys but .* is missing"):
        chain.make_checkpoint(tenant)
    assert not settings.AUDIT_SIGNING_KEY_FILE.exists()


def test_a_broken_ring_is_a_clear_problem() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 1)
    chain.make_checkpoint(tenant)
    rotate()
    keys.ring_path().write_text("{nope")
    messages = [problem.message for problem in chain.verify_chain(tenant).problems]
    assert any("cannot be read" in message for message in messages)


# --- A signer on another host ---------------------------------------------------------------


@pytest.fixture
def signer_host(tmp_path: Path, settings: Any) -> Iterator[dict[str, Any]]:
    """`custodia audit signer serve`'s server with a key directory of its own ("the other
    host"), on a real loopback port; this host is left with no private key."""
    host_dir = tmp_path / "signer-host"
    settings.AUDIT_SIGNING_KEY_FILE = host_dir / "signer.pem"
    settings.AUDIT_SIGNER_SECRET_FILE = host_dir / "secret"
    ring = keys.ensure_ring()
    server = signer_server("127.0.0.1", 0, settings.AUDIT_SIGNER_SECRET_FILE)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # This host: the ring and the secret copied over, no key.
    here = tmp_path / "web-host"
    here.mkdir()
    shutil.copy(ring, here / "ring.json")
    shutil.copy(settings.AUDIT_SIGNER_SECRET_FILE, here / "secret")
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield {"url": url, "here": here, "key": settings.AUDIT_SIGNING_KEY_FILE}
    finally:
        server.shutdown()
        server.server_close()


def as_web_host(settings: Any, host: dict[str, Any]) -> None:
    settings.AUDIT_SIGNER = "remote"
    settings.AUDIT_SIGNER_URL = host["url"]
    settings.AUDIT_SIGNER_SECRET_FILE = host["here"] / "secret"
    settings.AUDIT_KEY_RING_FILE = host["here"] / "ring.json"
    settings.AUDIT_SIGNING_KEY_FILE = host["here"] / "no-key-here.pem"


def test_a_checkpoint_made_through_the_remote_signer_verifies(
    settings: Any, signer_host: dict[str, Any]
) -> None:
    as_web_host(settings, signer_host)
    tenant = uuid.uuid4()
    _events(tenant, 3)
    made = chain.make_checkpoint(tenant)
    assert made is not None
    report = chain.verify_chain(tenant)
    assert report.ok, report.problems
    assert not settings.AUDIT_SIGNING_KEY_FILE.exists()  # the web host never made a key
    # The maintenance path (the worker's daily round) signs through it too.
    _events(tenant, 1)
    call_command("audit", "checkpoint", stdout=StringIO())
    assert chain.verify_chain(tenant).checkpoints == 2


def test_the_signer_refuses_a_wrong_secret(settings: Any, signer_host: dict[str, Any]) -> None:
    as_web_host(settings, signer_host)
    (signer_host["here"] / "secret").write_text("x" * 60)
    tenant = uuid.uuid4()
    _events(tenant, 1)
    with pytest.raises(chain.ChainBroken, match="refused to sign: HTTP 401"):
        chain.make_checkpoint(tenant)


def _post(url: str, secret: bytes, payload: bytes, timestamp: int | None = None) -> int:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret, stamp.encode() + b"." + payload, hashlib.sha256).hexdigest()
    request = urllib.request.Request(  # noqa: S310 (the test's own http URL)
        f"{url}/sign",
        data=payload,
        method="POST",
        headers={"X-Custodia-Timestamp": stamp, "X-Custodia-Signature": mac},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_signer_signs_checkpoint_statements_only(
    settings: Any, signer_host: dict[str, Any]
) -> None:
    secret = (signer_host["here"] / "secret").read_bytes().strip()
    url = signer_host["url"]
    # Anything else, even properly authenticated, is refused: the key vouches for checkpoints.
    assert _post(url, secret, json.dumps({"statement": "pay Mallory"}).encode()) == 400
    assert _post(url, secret, b"[]") == 400
    good = json.dumps(
        {
            "statement": json.dumps(
                {
                    "v": 1,
                    "tenant": None,
                    "made_at": "2026-01-01T00:00:00+00:00",
                    "reason": "manual",
                    "previous": "",
                    "heads": [],
                }
            )
        }
    ).encode()
    assert _post(url, secret, good) == 200
    assert _post(url, secret, good, timestamp=int(time.time()) - 600) == 401  # a replay
    assert _post(url, b"y" * 60, good) == 401
    # Malformed headers are answered, never a dropped connection: a length that is no number,
    # a signature that is not ASCII.
    port = int(url.rsplit(":", 1)[1])
    for headers in (
        {"Content-Length": "ten", "X-Custodia-Timestamp": "1", "X-Custodia-Signature": "x"},
        {"X-Custodia-Timestamp": str(int(time.time())), "X-Custodia-Signature": "é" * 64},
    ):
        link = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        body = None if "Content-Length" in headers else good
        link.putrequest("POST", "/sign", skip_accept_encoding=True)
        for name, value in headers.items():
            link.putheader(name, value.encode("utf-8"))
        if body is not None:
            link.putheader("Content-Length", str(len(body)))
        link.endheaders(body)
        assert link.getresponse().status in (400, 401), headers
        link.close()


def test_a_signer_whose_key_this_host_does_not_know_is_refused(
    settings: Any, signer_host: dict[str, Any]
) -> None:
    as_web_host(settings, signer_host)
    ring = json.loads((signer_host["here"] / "ring.json").read_text())
    ring["keys"] = []
    (signer_host["here"] / "ring.json").write_text(json.dumps(ring))
    tenant = uuid.uuid4()
    _events(tenant, 1)
    with pytest.raises(chain.ChainBroken, match="the key ring does not hold"):
        chain.make_checkpoint(tenant)
    assert chain.verify_chain(tenant).checkpoints == 0


def test_rotation_is_refused_on_a_host_with_a_remote_signer(
    settings: Any, signer_host: dict[str, Any]
) -> None:
    as_web_host(settings, signer_host)
    with pytest.raises(CommandError, match="rotate the key on the signer's host"):
        rotate()


def test_forging_the_table_by_hand_without_the_key_fails() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 1)
    chain.make_checkpoint(tenant)
    _owner_sql("ALTER TABLE audit_checkpoint DISABLE TRIGGER audit_checkpoint_append_only")
    _owner_sql(
        "UPDATE audit_checkpoint SET key_id = 'feedfeedfeedfeed' WHERE tenant_id = %s", [tenant]
    )
    messages = [problem.message for problem in chain.verify_chain(tenant).problems]
    assert any("the key ring does not hold (feedfeedfeedfeed)" in message for message in messages)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CUSTODIA_AUDIT_SIGNER": "hsm"}, "CUSTODIA_AUDIT_SIGNER is `local` or `remote`."),
        (
            {"CUSTODIA_AUDIT_SIGNER": "remote"},
            "CUSTODIA_AUDIT_SIGNER=remote needs CUSTODIA_AUDIT_SIGNER_URL.",
        ),
        (
            {"CUSTODIA_AUDIT_SIGNER": "remote", "CUSTODIA_AUDIT_SIGNER_URL": "file:///etc/x"},
            "CUSTODIA_AUDIT_SIGNER=remote needs CUSTODIA_AUDIT_SIGNER_URL.",
        ),
    ],
)
def test_a_bad_signer_setting_stops_the_start(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    from tests.test_settings import refused

    assert refused(tmp_path, env) == message


def test_the_signer_command_signs_on_a_real_port(settings: Any, tmp_path: Path) -> None:
    """`custodia audit signer serve` as its own process, with its own key; this host has none."""
    import os
    import subprocess
    import sys

    from tests.mail import free_port

    signer_dir = tmp_path / "signer-process"
    port = free_port()
    repo = Path(__file__).resolve().parents[2]
    log = tmp_path / "signer.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "custodia.cli", "audit", "signer", "serve", "--port", str(port)],
            cwd=repo,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(repo)]),
                "CUSTODIA_AUDIT_SIGNING_KEY_FILE": str(signer_dir / "signer.pem"),
                "CUSTODIA_AUDIT_SIGNER_SECRET_FILE": str(signer_dir / "secret"),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "Audit checkpoint signer on" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the signer did not start"
            time.sleep(0.2)
        here = tmp_path / "web-host"
        here.mkdir()
        shutil.copy(signer_dir / "audit_signing_keys.json", here / "ring.json")
        shutil.copy(signer_dir / "secret", here / "secret")
        as_web_host(settings, {"url": f"http://127.0.0.1:{port}", "here": here})
        tenant = uuid.uuid4()
        _events(tenant, 2)
        call_command("audit", "checkpoint", stdout=StringIO())
        report = chain.verify_chain(tenant)
        assert report.ok and report.checkpoints == 1, report.problems
        assert not (here / "no-key-here.pem").exists()
        # Its log says which key signed, never the statement.
        output = log.read_text()
        assert "signed a checkpoint with key" in output and str(tenant) not in output
    finally:
        process.terminate()
        process.wait(timeout=15)
