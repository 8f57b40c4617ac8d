"""Trust pages are public: an HTTPS client for them (see tests.servers.always_https)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.servers import always_https


@pytest.fixture
def web(web: Any) -> Any:
    return always_https(web)


@pytest.fixture
def web_as(web_as: Any) -> Any:
    return lambda actor: always_https(web_as(actor))
