"""Transparency tests: the figures are computed afresh in each test (no kept figures carry over),
and a scratch database of this package's own for what needs committed data (the periodic task's
list of businesses and the operator's records are read on connections of their own)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections, transaction

from custodia.transparency.figures import forget_cached
from tests import scratch
from tests.factories import TenantMatrix, build_matrix

_world: dict[str, TenantMatrix] = {}


@pytest.fixture(autouse=True)
def fresh_figures() -> Iterator[None]:
    forget_cached()
    yield
    forget_cached()


@pytest.fixture(scope="package")
def trust_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """A migrated database of this package's own; every connection points at it meanwhile."""
    with scratch.database("trust", django_db_blocker) as name:
        try:
            yield name
        finally:
            _world.clear()


@pytest.fixture
def live(trust_database: str, django_db_blocker: Any) -> Iterator[str]:
    """Database access outside any test transaction: everything commits."""
    with django_db_blocker.unblock():
        yield trust_database
        connections.close_all()


@pytest.fixture
def world(live: str) -> TenantMatrix:
    """Two businesses with every role, committed once for the package."""
    if "matrix" not in _world:
        with transaction.atomic():
            _world["matrix"] = build_matrix()
    return _world["matrix"]
