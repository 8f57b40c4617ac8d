"""allauth's own account pages that a logged-in person can reach render (never a 500)."""

from __future__ import annotations

import pytest

from tests.factories import TenantMatrix
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/sessions/",
        "/accounts/2fa/",
        "/accounts/2fa/webauthn/",
        "/accounts/email/",
        "/accounts/password/change/",
    ],
)
def test_allauth_pages_render(matrix: TenantMatrix, path: str) -> None:
    answer = logged_in(matrix.a.owner).get(path)
    assert answer.status_code in (200, 302), (path, answer.status_code)
