"""The live vault's fixtures (tests/vaults.py, shared with the app's card tests)."""

from __future__ import annotations

from tests.vaults import business, other_business, page_origins, vault

__all__ = ["business", "other_business", "page_origins", "vault"]
