"""The account security page leads to every sign-in setting: two-factor, password and email."""

from __future__ import annotations

from tests.factories import TenantMatrix
from tests.web.support import logged_in


def test_the_security_page_links_to_two_factor_password_and_email(matrix: TenantMatrix) -> None:
    for actor in (matrix.a.owner, matrix.a.staff, matrix.a.client_login):
        response = logged_in(actor).get("/app/security/")
        assert response.status_code == 200
        html = response.content.decode()
        for target in ("/accounts/2fa/", "/accounts/password/change/", "/accounts/email/"):
            assert f'href="{target}"' in html, target
        for target in ("/accounts/2fa/", "/accounts/password/change/", "/accounts/email/"):
            assert logged_in(actor).get(target).status_code == 200, target
