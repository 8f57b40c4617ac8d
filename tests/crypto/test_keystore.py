"""The keystore's promises, attacked: keys bound to their business, files private, destruction
that overwrites before it unlinks and reaches every process within a second."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from custodia.crypto import keyring, keystore
from custodia.crypto.errors import KekError, KeyUnavailable
from custodia.crypto.fields import open_text, seal_text


def test_a_wrapped_key_copied_into_another_business_file_does_not_unwrap(
    sandbox: Path,
) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    keyring.create_keys(mine)
    keyring.create_keys(theirs)
    blob = seal_text(theirs, "clients_client", "notes", "row-1", "their secret")
    # An attacker with write access to the keystore copies their own business's wrapped keys
    # (same KEK, same version numbers) into the victim's file: each wrap names its business.
    original = keystore.path_for(theirs).read_text()
    attacker = json.loads(keystore.path_for(mine).read_text())
    for part in ("keys", "index"):
        victim = json.loads(original)
        if part == "keys":
            victim["keys"][0]["wrapped"] = attacker["keys"][0]["wrapped"]
        else:
            victim["index"]["wrapped"] = attacker["index"]["wrapped"]
        keystore.path_for(theirs).write_text(json.dumps(victim))
        keyring.reset()
        with pytest.raises(KekError, match="does not unwrap"):
            keyring.keys_for(theirs)
    # The attacker's own file still works: the refusal is about the move, not a broken KEK.
    keyring.reset()
    assert keyring.keys_for(mine).primary == 1
    with pytest.raises(KekError):
        open_text(theirs, "clients_client", "notes", "row-1", blob)


def test_key_files_and_their_directory_are_private_whatever_the_umask(sandbox: Path) -> None:
    previous = os.umask(0)
    try:
        business = uuid.uuid4()
        keyring.create_keys(business)
        keystore.add_version(business, keyring.provider())
    finally:
        os.umask(previous)
    directory = keystore.keystore_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in (keystore.path_for(business), directory / ".lock"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    keyring_file = Path(sandbox / "secrets" / "kek-keyring.json")
    assert stat.S_IMODE(keyring_file.stat().st_mode) == 0o600


def test_a_rewrite_makes_a_leftover_of_a_crashed_write_private(sandbox: Path) -> None:
    business = uuid.uuid4()
    keyring.create_keys(business)
    leftover = keystore.temporary_for(keystore.path_for(business))
    leftover.write_text("half a key file")
    leftover.chmod(0o644)
    keystore.add_version(business, keyring.provider())
    assert stat.S_IMODE(keystore.path_for(business).stat().st_mode) == 0o600


def test_destruction_overwrites_the_key_file_before_unlinking_it(
    sandbox: Path, tmp_path: Path
) -> None:
    business = uuid.uuid4()
    keyring.create_keys(business)
    path = keystore.path_for(business)
    leftover = keystore.temporary_for(path)
    leftover.write_bytes(path.read_bytes())  # a crashed write's copy of the keys
    # Second names for the same inodes: what unlinking alone would leave readable (an open
    # descriptor, a hard link, blocks not yet reused).
    witnesses = {path: tmp_path / "witness", leftover: tmp_path / "witness-tmp"}
    before = {}
    for original, witness in witnesses.items():
        before[original] = original.read_bytes()
        os.link(original, witness)
    wrapped = json.loads(before[path])["keys"][0]["wrapped"]
    assert keystore.destroy(business) is True
    for original, witness in witnesses.items():
        assert not original.exists()
        after = witness.read_bytes()
        assert len(after) == len(before[original]) and after != before[original]
        assert b"custodia-keystore" not in after and wrapped.encode() not in after
        assert base64.b64decode(wrapped)[:16] not in after
    keyring.forget(business)
    with pytest.raises(KeyUnavailable):
        keyring.keys_for(business)


WATCHER = """
import sys, time, uuid
import django
django.setup()
from custodia.crypto.errors import KeyUnavailable
from custodia.crypto.fields import open_text
business, blob = uuid.UUID(sys.argv[1]), bytes.fromhex(sys.argv[2])
assert open_text(business, "clients_client", "notes", "row-1", blob) == "a note"
print("ready", flush=True)
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        open_text(business, "clients_client", "notes", "row-1", blob)
    except KeyUnavailable:
        print(f"gone {time.time()!r}", flush=True)
        break
    time.sleep(0.01)
else:
    print("still readable", flush=True)
"""


def test_a_destruction_reaches_another_process_within_a_second(
    sandbox: Path, settings: Any
) -> None:
    business = uuid.uuid4()
    keyring.create_keys(business)
    blob = seal_text(business, "clients_client", "notes", "row-1", "a note")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "custodia.settings",
        "CUSTODIA_VAR_DIR": str(sandbox / "var"),
        "CUSTODIA_KEYSTORE_DIR": str(settings.KEYSTORE_DIR),
        "CUSTODIA_KEK_PROVIDER": "file",
        "CUSTODIA_KEK_KEYRING_FILE": str(settings.KEK_KEYRING_FILE),
    }
    watcher = subprocess.Popen(  # noqa: S603  (fixed arguments)
        [sys.executable, "-c", WATCHER, str(business), blob.hex()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "ready", watcher.stderr
        # The watcher has the keys cached and keeps opening the value with them.
        time.sleep(0.3)
        destroyed_at = time.time()
        keystore.destroy(business)
        line = watcher.stdout.readline().strip()
        assert line.startswith("gone "), line
        lag = float(line.removeprefix("gone ")) - destroyed_at
        # Within a second (REFRESH_SECONDS), plus scheduling slack on a busy test machine.
        assert lag <= keyring.REFRESH_SECONDS + 0.3, lag
        assert watcher.wait(timeout=10) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
