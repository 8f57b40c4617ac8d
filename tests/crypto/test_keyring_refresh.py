"""A value sealed under a key version this process has not seen is opened at once, even when the
key file's stat still looks as it did (another host's rotation, seen through the attribute cache
of a shared file system such as NFS: docs/scaling.md)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from custodia.crypto import keyring, keystore
from custodia.crypto.fields import open_text, seal_text

ROW = uuid.uuid4()


def test_an_unknown_version_rereads_the_key_file_whatever_its_stat_says(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    business = uuid.uuid4()
    keyring.create_keys(business)
    cached = keyring.keys_for(business)  # this host's cache: version 1 only
    stale = keyring._signature(business)
    # Another host rotates: version 2 is written to the shared keystore, and seals a value.
    keystore.add_version(business, keyring.provider())
    monkeypatch.setattr(keyring, "_cache", {})
    sealed_elsewhere = seal_text(business, "clients_client", "email", ROW, "kim@example.test")
    assert keyring.version_of(sealed_elsewhere) == cached.primary + 1
    # Back on this host: its cache holds version 1, and its stat of the file is still the old
    # one (the attribute cache), even past the once-a-second check.
    monkeypatch.setattr(keyring, "_cache", {business: (0.0, stale, cached)})
    monkeypatch.setattr(keyring, "_signature", lambda business_id: stale)
    assert keyring.keys_for(business) is cached  # the stat says nothing changed
    assert (
        open_text(business, "clients_client", "email", ROW, sealed_elsewhere) == "kim@example.test"
    )
    assert keyring.keys_for(business).primary == cached.primary + 1  # and new writes use it
