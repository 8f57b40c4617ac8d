"""`custodia setup` / `serve` refuse to start on a keystore that knows none of the database's
businesses (a wrong or unmounted directory), and warn when some are missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from custodia.core.permissions import Role
from custodia.crypto import keyring, keystore, rows
from custodia.crypto.checks import verify_keystore_covers_database
from custodia.crypto.errors import KekError
from tests.acting import act
from tests.factories import TenantMatrix, add_member

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


@pytest.fixture
def session_keystore() -> Path:
    return Path(settings.KEYSTORE_DIR)


@pytest.fixture
def empty_keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_keystore: Path) -> Path:
    """An empty keystore directory. The check lists businesses as the test's own connection
    sees them (Alpha's owner, who is also a manager of Bravo), where the owner role sees all."""
    monkeypatch.setattr(rows, "USING", "default")
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    monkeypatch.setattr(settings, "KEYSTORE_DIR", directory)
    keyring.reset()
    return directory


@pytest.fixture
def both_visible(matrix: TenantMatrix) -> TenantMatrix:
    add_member(matrix.b.owner, matrix.a.owner.user, Role.MANAGER)
    act(matrix.a.owner)
    return matrix


def test_a_keystore_without_any_of_the_businesses_stops_start_up(
    both_visible: TenantMatrix, empty_keystore: Path
) -> None:
    act(both_visible.a.owner)
    with pytest.raises(KekError, match="holds no keys for any of the 2 businesses") as refused:
        verify_keystore_covers_database()
    assert "CUSTODIA_KEYSTORE_DIR" in str(refused.value)


def test_a_keystore_missing_some_businesses_is_reported(
    both_visible: TenantMatrix, empty_keystore: Path, session_keystore: Path
) -> None:
    a = both_visible.a.owner.tenant_id
    shutil.copy2(session_keystore / keystore.path_for(a).name, empty_keystore)
    act(both_visible.a.owner)
    message = verify_keystore_covers_database()
    assert message.startswith("WARNING: 1 of 2 businesses have no keys")
    shutil.copy2(
        session_keystore / keystore.path_for(both_visible.b.owner.tenant_id).name, empty_keystore
    )
    assert verify_keystore_covers_database() == "keystore holds the keys of all 2 businesses"
