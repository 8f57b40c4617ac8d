"""Fixtures shared by the encryption tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodia.crypto import keyring


@pytest.fixture
def sandbox(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """An empty keystore and no keyring yet, in a temporary directory; the file provider."""
    settings.KEK_PROVIDER = "file"
    settings.KEK_KEYRING_FILE = tmp_path / "secrets" / "kek-keyring.json"
    settings.KEYSTORE_DIR = tmp_path / "keys"
    settings.KEK_VALUE = ""
    settings.KEK_PREVIOUS = []
    keyring.reset()
    yield tmp_path
    keyring.reset()  # the next test's keys come from its own settings
