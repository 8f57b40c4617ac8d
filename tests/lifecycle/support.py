"""Backups in tests: a key pair of the test's own, and a store in its temporary directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyrage


def backup_keys(settings: Any) -> list[pyrage.x25519.Identity]:
    """Backups are encrypted to a fresh age key pair; its identity decrypts them."""
    identity = pyrage.x25519.Identity.generate()
    settings.BACKUP_RECIPIENTS = [str(identity.to_public())]
    return [identity]


def write_identity(path: Path, identity: pyrage.x25519.Identity) -> Path:
    path.write_text(f"# a test identity\n{identity}\n")
    return path
