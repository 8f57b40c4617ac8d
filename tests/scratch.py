"""A migrated database of a test module's (or package's) own, for tests that need committed data:
real workers, several connections, dumps. Every connection points at it meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

from custodia.crypto import keyring
from custodia.ops.management.commands.setup import (
    drop_database,
    point_connections_at,
    prepare_database,
)


@contextmanager
def database(suffix: str, django_db_blocker: Any, *, keystore: Path | None = None) -> Iterator[str]:
    """The test database's name plus `_suffix`, created fresh and migrated; afterwards dropped,
    and the connections pointed back at the test database. With `keystore`, the businesses made
    meanwhile keep their data keys in that directory."""
    original = dict(settings.DATABASES["default"])
    original_keystore = settings.KEYSTORE_DIR
    name = f"{original['NAME']}_{suffix}"
    with django_db_blocker.unblock():
        try:
            if keystore is not None:
                settings.KEYSTORE_DIR = keystore
                keyring.reset()
            prepare_database(name, fresh=True)
            yield name
        finally:
            connections.close_all()
            drop_database(name)
            point_connections_at(original["NAME"], original["HOST"])
            if keystore is not None:
                settings.KEYSTORE_DIR = original_keystore
                keyring.reset()
