"""API token pages: the plain token is shown once, never kept, and only its owner revokes it."""

from __future__ import annotations

import re

from custodia.accounts.access import list_tokens
from custodia.accounts.models import ApiToken
from tests.acting import act
from tests.conftest import HttpsClient
from tests.web.support import logged_in, snapshot, text, title


def test_member_creates_sees_once_and_revokes_a_token(matrix):
    a = matrix.a
    browser = logged_in(a.staff)
    page = browser.get("/app/tokens/")
    assert page.status_code == 200 and title(page) == "API tokens · Custodia"
    assert '<label for="id_name">Token name' in page.content.decode()
    assert '<label for="id_days">Valid for (days)' in page.content.decode()

    created = browser.post("/app/tokens/new/", {"name": "Spreadsheet", "days": "30"})
    assert created.status_code == 200 and title(created) == "Token created · Custodia"
    plain = re.search(r'value="(cst_[^"]+)"', created.content.decode()).group(1)
    # Shown on this page only: not in the session, not in the database, not on the list.
    assert plain not in str(dict(browser.session.items()))
    act(a.staff)
    token = list_tokens(a.staff).get()
    assert token.name == "Spreadsheet" and plain not in str(ApiToken.objects.values().get())
    listing = browser.get("/app/tokens/")
    assert "Spreadsheet" in text(listing) and plain not in listing.content.decode()
    assert f"cst_{token.prefix}_" in listing.content.decode()

    # The token works for the API until revoked.
    api = HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get("/api/v1/clients").status_code == 200
    revoked = browser.post(f"/app/tokens/{token.pk}/revoke/")
    assert revoked.status_code == 302 and revoked["Location"] == "/app/tokens/"
    act(a.staff)
    assert list_tokens(a.staff).get().revoked_at is not None
    assert api.get("/api/v1/clients").status_code == 401


def test_bad_token_input_is_a_400_with_a_message(matrix):
    browser = logged_in(matrix.a.manager)
    before = snapshot(matrix)
    response = browser.post("/app/tokens/new/", {"name": "", "days": "400"})
    assert response.status_code == 400
    assert "This field is required." in text(response)
    assert "Ensure this value is less than or equal to 365." in text(response)
    assert snapshot(matrix) == before


def test_only_the_tokens_owner_can_revoke_it(matrix):
    from custodia.accounts.actions import do_create_api_token

    a = matrix.a
    act(a.owner)
    token, _plain = do_create_api_token(actor=a.owner, name="owner's")
    before = snapshot(matrix)
    for actor in (a.manager, a.staff, matrix.outsider):
        assert logged_in(actor).post(f"/app/tokens/{token.pk}/revoke/").status_code == 404
    assert logged_in(a.client_login).post(f"/app/tokens/{token.pk}/revoke/").status_code == 403
    assert logged_in(a.owner).post("/app/tokens/nope/revoke/").status_code == 404
    assert snapshot(matrix) == before
    # Other people's tokens are not listed either.
    assert "owner&#x27;s" not in logged_in(a.manager).get("/app/tokens/").content.decode()
