"""MFA on allauth: single-use TOTP codes and recovery codes, secrets encrypted at rest, and the
business policy that makes members enrol a factor before they reach anything else."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import reverse

from custodia.accounts import mfa
from custodia.accounts.models import User
from custodia.core.actor import Actor
from custodia.tenancy.models import Business
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Any) -> None:
    """This process's own hashing slots: other test runs on the machine share var/run's."""
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


# A fixed instant in the middle of a 30-second TOTP step, so a test never straddles two steps.
NOW = 1_800_000_015.0


def totp_now(secret: str, at: float = NOW) -> str:
    """The code an authenticator app shows at `at`."""
    return format_hotp_value(hotp_value(secret, int(at) // 30))


def enrol_totp(user: User) -> str:
    """Activate TOTP for the user directly; returns the (plain) secret."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def require(owner: Actor, **flags: bool) -> None:
    """The owner switches on the business's MFA policy for some roles."""
    act(owner)
    assert Business.objects.filter(pk=owner.tenant_id).update(**flags) == 1


def reauthenticate(client: HttpsClient) -> None:
    """Enter the password again, as allauth asks before a factor is added or removed."""
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302, response.content[:500]


def password_login(user: User) -> tuple[HttpsClient, object]:
    """A browser that has passed the password step of a login."""
    client = HttpsClient()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    return client, response


# --- Single-use codes ------------------------------------------------------------------------


@pytest.mark.usefixtures("cache_backend")  # used codes are marked in the cache
def test_login_asks_for_the_second_factor_and_accepts_the_current_code(matrix):
    user = matrix.a.owner.user
    with time_machine.travel(NOW, tick=False):
        secret = enrol_totp(user)
        client, response = password_login(user)
        assert response.status_code == 302
        assert response["Location"] == reverse("mfa_authenticate")
        # Not logged in yet: the dashboard sends them to log in.
        assert client.get(reverse("dashboard")).status_code == 302
        wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
        assert wrong.status_code == 200 and b"Incorrect code" in wrong.content
        response = client.post(reverse("mfa_authenticate"), {"code": totp_now(secret)})
        assert response.status_code == 302
        assert client.get(reverse("dashboard")).status_code == 200


@pytest.mark.usefixtures("cache_backend")  # used codes are marked in the cache
def test_totp_replay_of_a_used_code_is_rejected(matrix):
    user = matrix.a.owner.user
    with time_machine.travel(NOW, tick=False):
        secret = enrol_totp(user)
        code = totp_now(secret)
        first, _ = password_login(user)
        assert first.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302

        # Someone who saw the code (shoulder, phishing proxy) replays it within the same step.
        second, _ = password_login(user)
        replay = second.post(reverse("mfa_authenticate"), {"code": code})
        assert replay.status_code == 200
        assert b"Incorrect code" in replay.content
        assert second.get(reverse("dashboard")).status_code == 302

    # The next time step's code works.
    with time_machine.travel(NOW + 30, tick=False):
        response = second.post(reverse("mfa_authenticate"), {"code": totp_now(secret, NOW + 30)})
        assert response.status_code == 302
        assert second.get(reverse("dashboard")).status_code == 200


@pytest.mark.usefixtures("cache_backend")  # used codes are marked in the cache
def test_a_code_from_the_previous_step_is_rejected(matrix):
    user = matrix.a.owner.user
    with time_machine.travel(NOW, tick=False):
        secret = enrol_totp(user)
        client, _ = password_login(user)
        stale = client.post(reverse("mfa_authenticate"), {"code": totp_now(secret, NOW - 30)})
        assert b"Incorrect code" in stale.content


def test_recovery_code_reuse_is_rejected(matrix):
    user = matrix.a.manager.user
    enrol_totp(user)
    codes = RecoveryCodes.activate(user).generate_codes()
    assert len(codes) == 10 and len(set(codes)) == 10

    first, _ = password_login(user)
    assert first.post(reverse("mfa_authenticate"), {"code": codes[0]}).status_code == 302
    assert first.get(reverse("dashboard")).status_code == 200

    second, _ = password_login(user)
    reuse = second.post(reverse("mfa_authenticate"), {"code": codes[0]})
    assert reuse.status_code == 200 and b"Incorrect code" in reuse.content
    assert second.get(reverse("dashboard")).status_code == 302
    # Another unused code still works, and is then spent too.
    assert second.post(reverse("mfa_authenticate"), {"code": codes[1]}).status_code == 302
    rc = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES).wrap()
    assert len(rc.get_unused_codes()) == 8


def test_recovery_codes_are_shown_once_and_only_after_reauthentication(web_as, matrix):
    user = matrix.a.owner.user
    enrol_totp(user)
    codes = RecoveryCodes.activate(user).generate_codes()
    client = web_as(matrix.a.owner)
    response = client.get(reverse("mfa_view_recovery_codes"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    reauthenticate(client)
    first = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert all(code in first for code in codes)
    again = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert not any(code in again for code in codes)
    assert client.get(reverse("mfa_download_recovery_codes")).status_code == 403


# --- Secrets at rest -------------------------------------------------------------------------


def test_totp_secret_and_recovery_codes_are_stored_encrypted(matrix):
    user = matrix.a.owner.user
    secret = enrol_totp(user)
    codes = RecoveryCodes.activate(user).generate_codes()
    stored = json.dumps(list(Authenticator.objects.filter(user=user).values("data")))
    assert secret not in stored
    for code in codes:
        assert code not in stored
    totp = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    rc = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    assert totp.data["secret"].startswith(mfa.CIPHERTEXT_PREFIX)
    # One hash per code (tests/accounts/test_recovery_codes.py); sealed only until shown once.
    assert rc.data["pending"].startswith(mfa.CIPHERTEXT_PREFIX)
    assert set(rc.data) == {"hashes", "used_mask", "pending"}
    assert mfa.decrypt_secret(totp.data["secret"]) == secret


def test_encryption_is_randomised_and_tamper_evident():
    one, two = mfa.encrypt_secret("JBSWY3DPEHPK3PXP"), mfa.encrypt_secret("JBSWY3DPEHPK3PXP")
    assert one != two
    tampered = one[:-4] + ("AAAA" if not one.endswith("AAAA") else "BBBB")
    with pytest.raises(ImproperlyConfigured) as caught:
        mfa.decrypt_secret(tampered)
    assert "JBSWY3DPEHPK3PXP" not in str(caught.value)
    with pytest.raises(ImproperlyConfigured):
        mfa.decrypt_secret("JBSWY3DPEHPK3PXP")  # never accepted in the clear


def test_secrets_survive_a_secret_key_rotation_through_the_fallbacks(settings):
    old = settings.SECRET_KEY
    stored = mfa.encrypt_secret("seed-value")
    with override_settings(SECRET_KEY="n" * 60, SECRET_KEY_FALLBACKS=[old]):
        assert mfa.decrypt_secret(stored) == "seed-value"
    with override_settings(SECRET_KEY="n" * 60, SECRET_KEY_FALLBACKS=[]):
        with pytest.raises(ImproperlyConfigured):
            mfa.decrypt_secret(stored)


# --- The business policy ---------------------------------------------------------------------


def test_a_covered_member_without_a_factor_is_sent_to_enrol(web_as, matrix):
    require(matrix.a.owner, mfa_required_owners=True)
    client = web_as(matrix.a.owner)
    for path in ("/app/", "/app/clients/", "/app/tokens/", reverse("usersessions_list")):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == reverse("mfa_index"), path
    page = client.get(reverse("mfa_index"))
    assert page.status_code == 200
    assert b'id="mfa-required"' in page.content
    assert b"owners of" in page.content
    # Enrolment itself is reachable, after allauth's re-authentication.
    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert client.get(response["Location"]).status_code == 200
    reauthenticate(client)
    assert client.get(reverse("mfa_activate_totp")).status_code == 200
    assert client.get(reverse("mfa_add_webauthn")).status_code == 200
    # And so is logging out.
    assert client.post(reverse("account_logout")).status_code == 302
    assert client.get("/app/").status_code == 302
    assert client.get("/app/")["Location"].startswith(reverse("account_login"))


def test_a_covered_member_posting_elsewhere_changes_nothing(web_as, matrix):
    require(matrix.a.owner, mfa_required_owners=True)
    client = web_as(matrix.a.owner)
    response = client.post("/app/clients/new/", {"name": "Should Not Exist"})
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_index")
    from custodia.clients.models import Client

    act(matrix.a.owner)
    assert not Client.objects.filter(name="Should Not Exist").exists()


def test_the_api_answers_a_covered_session_with_403_and_a_clear_message(web_as, matrix):
    require(matrix.a.owner, mfa_required_managers=True)
    response = web_as(matrix.a.manager).get("/api/v1/clients")
    assert response.status_code == 403
    assert response.json() == {"detail": mfa.ENROL_API_MESSAGE}


def test_a_covered_members_token_stops_until_they_have_a_factor(api_as, matrix):
    # Made before the policy was switched on: the token is refused while its owner has no
    # factor, for reads and writes alike, and works again once they enrol one.
    api = api_as(matrix.a.manager)
    assert api.get("/api/v1/clients").status_code == 200
    require(matrix.a.owner, mfa_required_managers=True)
    response = api.get("/api/v1/clients")
    assert response.status_code == 403
    assert response.json() == {"detail": mfa.NO_FACTOR_BEARER_MESSAGE}
    created = api.post("/api/v1/clients", {"name": "Via Token"}, content_type="application/json")
    assert created.status_code == 403
    from custodia.clients.models import Client

    act(matrix.a.owner)
    assert not Client.objects.filter(name="Via Token").exists()
    RecoveryCodes.activate(matrix.a.manager.user)  # recovery codes alone are not a factor
    assert api.get("/api/v1/clients").status_code == 403
    enrol_totp(matrix.a.manager.user)
    assert api.get("/api/v1/clients").status_code == 200


def test_tokens_of_members_the_policy_does_not_cover_keep_working(api_as, matrix):
    require(matrix.a.owner, mfa_required_owners=True)
    assert api_as(matrix.a.manager).get("/api/v1/clients").status_code == 200
    assert api_as(matrix.outsider).get("/api/v1/clients").status_code == 200
    assert api_as(matrix.a.owner).get("/api/v1/clients").status_code == 403


def test_a_refused_token_is_still_a_401_when_wrong(api_as, matrix):
    # The policy answer is given only for a genuine token: a forged one learns nothing.
    require(matrix.a.owner, mfa_required_managers=True)
    api_as(matrix.a.manager)
    forged = HttpsClient(HTTP_AUTHORIZATION="Bearer cst_0123456789ab_forged")
    assert forged.get("/api/v1/clients").status_code == 401


def test_a_bearer_header_does_not_unlock_web_pages_or_the_session_api(web_as, matrix):
    require(matrix.a.owner, mfa_required_owners=True)
    client = web_as(matrix.a.owner)
    junk = {"HTTP_AUTHORIZATION": "Bearer cst_not_a_token"}
    response = client.get("/app/clients/", **junk)
    assert response.status_code == 302 and response["Location"] == reverse("mfa_index")
    # The API answers a presented token alone: a wrong one is a 401, never the session's data.
    assert client.get("/api/v1/clients", **junk).status_code == 401


def test_roles_the_policy_does_not_cover_are_not_asked(web_as, matrix):
    require(matrix.a.owner, mfa_required_owners=True, mfa_required_staff=True)
    assert web_as(matrix.a.manager).get("/app/").status_code == 200
    assert web_as(matrix.a.client_login).get("/app/portal/").status_code == 200
    assert web_as(matrix.a.staff).get("/app/").status_code == 302
    # The other business's policy is its own.
    assert web_as(matrix.outsider).get("/app/").status_code == 200


def test_a_member_with_a_factor_passes(web_as, matrix):
    require(matrix.a.owner, mfa_required_staff=True)
    enrol_totp(matrix.a.staff.user)
    assert web_as(matrix.a.staff).get("/app/").status_code == 200


def test_recovery_codes_alone_are_not_a_factor(web_as, matrix):
    require(matrix.a.owner, mfa_required_staff=True)
    RecoveryCodes.activate(matrix.a.staff.user)
    assert web_as(matrix.a.staff).get("/app/").status_code == 302


@pytest.mark.usefixtures("cache_backend")  # used codes are marked in the cache
def test_enrolling_totp_through_allauth_lets_the_member_in(web_as, matrix):
    require(matrix.a.owner, mfa_required_owners=True)
    client = web_as(matrix.a.owner)
    reauthenticate(client)
    with time_machine.travel(time.time(), tick=False):
        now = time.time()
        assert client.get(reverse("mfa_activate_totp")).status_code == 200
        secret = client.session["mfa.totp.secret"]
        response = client.post(reverse("mfa_activate_totp"), {"code": totp_now(secret, now)})
        assert response.status_code == 302
        # The recovery codes are shown once, then the member is in.
        assert response["Location"] == reverse("mfa_view_recovery_codes")
        codes_page = client.get(reverse("mfa_view_recovery_codes"))
        assert codes_page.status_code == 200
        assert client.get("/app/").status_code == 200
    assert "mfa.totp.secret" not in client.session


def test_platform_operators_always_need_a_factor(web_as, matrix, monkeypatch):
    # An operator is a record of the platform app (tests/platform/); login flags count for nothing.
    from tests.platform.support import make_operator, signed_in

    monkeypatch.setattr(User, "is_superuser", property(lambda user: True), raising=False)
    assert web_as(matrix.a.manager).get("/app/").status_code == 200
    operator = signed_in(make_operator(factor=False))
    assert operator.get("/operator/")["Location"] == reverse("mfa_index")
    page = operator.get(reverse("mfa_index"))
    assert b"platform operators" in page.content


def test_switching_to_a_business_without_the_policy_is_allowed(web_as, matrix):
    from tests.factories import add_member

    staff = matrix.a.staff
    add_member(matrix.b.owner, staff.user, role=matrix.b.staff.role)
    require(matrix.a.owner, mfa_required_staff=True)
    client = web_as(staff)
    assert client.get("/app/").status_code == 302
    response = client.post(reverse("switch_business"), {"business": str(matrix.b.owner.tenant_id)})
    assert response.status_code == 302
    assert client.get("/app/").status_code == 200


# --- Removing a factor -----------------------------------------------------------------------


def test_removing_a_factor_needs_the_password_and_the_factor_again(web_as, matrix):
    secret = enrol_totp(matrix.a.owner.user)
    client = web_as(matrix.a.owner)
    step_up = reverse("step_up") + "?next=%2Fapp%2F"

    def remove() -> Any:
        return client.post(
            reverse("mfa_deactivate_totp"), {}, HTTP_REFERER="https://testserver/app/"
        )

    # A session that has just logged in with the password alone: removal asks first.
    response = remove()
    assert response.status_code == 302 and response["Location"] == step_up
    assert Authenticator.objects.filter(user=matrix.a.owner.user).exists()
    # A wrong password does not count; the right one alone is not enough either.
    assert client.post(reverse("account_reauthenticate"), {"password": "not it"}).status_code == 200
    reauthenticate(client)
    assert remove()["Location"] == step_up
    assert Authenticator.objects.filter(user=matrix.a.owner.user).exists()
    # The step-up page now asks for the code; with it, the factor can go.
    assert client.get(step_up)["Location"].startswith(reverse("mfa_reauthenticate"))
    with time_machine.travel(time.time(), tick=False):
        code = totp_now(secret, time.time())
        entered = client.post(reverse("mfa_reauthenticate"), {"code": code})
        assert entered.status_code == 302, entered.content[:300]
        response = remove()
    assert response.status_code == 302 and response["Location"] == reverse("mfa_index")
    assert not Authenticator.objects.filter(
        user=matrix.a.owner.user, type=Authenticator.Type.TOTP
    ).exists()


def test_removing_a_factor_ends_the_other_sessions(
    web_as, matrix, django_capture_on_commit_callbacks
):
    secret = enrol_totp(matrix.a.owner.user)
    other_browser = web_as(matrix.a.owner)
    assert other_browser.get("/app/").status_code == 200  # in use: on the session list
    client = web_as(matrix.a.owner)
    reauthenticate(client)
    with time_machine.travel(time.time(), tick=False):
        client.post(reverse("mfa_reauthenticate"), {"code": totp_now(secret, time.time())})
        # allauth sends its signals once the change is committed.
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("mfa_deactivate_totp"), {})
    assert response.status_code == 302 and response["Location"] == reverse("mfa_index")
    assert other_browser.get("/app/").status_code == 302  # ended: sent to log in
    assert client.get("/app/").status_code == 200  # the session that made the change stays


# --- Pages -----------------------------------------------------------------------------------

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def assert_no_executable_inline_script(html: str) -> None:
    """Scripts are static files; inline <script> only as a JSON data block (never executed)."""
    for attributes in SCRIPT_TAG.findall(html):
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
    assert "style=" not in html
    assert " on" + "click=" not in html


def test_every_mfa_page_renders_in_the_layout_without_inline_code(web_as, matrix):
    user = matrix.a.owner.user
    client = web_as(matrix.a.owner)
    reauthenticate(client)

    def render(*names: str) -> None:
        for name in names:
            response = client.get(reverse(name))
            assert response.status_code == 200, name
            html = response.content.decode()
            assert 'class="site-header"' in html, name  # Custodia's layout, not allauth's
            assert_no_executable_inline_script(html)

    render("mfa_index", "mfa_activate_totp", "mfa_add_webauthn", "mfa_list_webauthn")
    enrol_totp(user)
    RecoveryCodes.activate(user)
    render(
        "mfa_index",
        "mfa_view_recovery_codes",
        "mfa_generate_recovery_codes",
        "mfa_deactivate_totp",
        "mfa_reauthenticate",
    )


def test_login_page_offers_a_passkey_with_static_scripts(web):
    response = web.get(reverse("account_login"))
    html = response.content.decode()
    assert 'id="passkey_login"' in html
    assert f'action="{reverse("mfa_login_webauthn")}"' in html
    assert "/static/mfa/js/webauthn.js" in html
    assert_no_executable_inline_script(html)


def test_second_factor_page_renders_without_inline_code(matrix):
    enrol_totp(matrix.a.owner.user)
    client, _ = password_login(matrix.a.owner.user)
    response = client.get(reverse("mfa_authenticate"))
    assert response.status_code == 200
    assert_no_executable_inline_script(response.content.decode())


def test_the_policy_page_says_what_happens_to_tokens(web_as, matrix):
    page = web_as(matrix.a.owner).get(reverse("business_security"))
    assert page.status_code == 200
    assert b'id="mfa-tokens"' in page.content
    assert b"API tokens are refused (403)" in page.content
