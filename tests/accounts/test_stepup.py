"""Step-up: sensitive actions want a fresh proof, asked inside the action; card work: 15 minutes.

The clock is `custodia.accounts.stepup.clock`, moved by the `now` fixture; the proof is what
allauth records in the session at login and re-authentication.
"""

from __future__ import annotations

from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.test import RequestFactory

from custodia.accounts import stepup
from custodia.accounts.actions import do_create_api_token
from custodia.accounts.models import ApiToken
from custodia.accounts.sessionstore import SessionStore
from custodia.accounts.stepup import (
    CARD_WINDOW_SECONDS,
    SessionAuthentication,
    StepUpRequired,
    require_card_window,
    require_step_up,
)
from custodia.core.actor import Actor
from custodia.core.permissions import Role
from custodia.tenancy.actions import do_change_role
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix, stale
from tests.web.support import age_session

pytestmark = pytest.mark.django_db

T0 = 1_800_000_000.0
MINUTE = 60.0


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(stepup, "clock", clock)
    return clock


def session_actor(actor: Actor, *records: dict[str, Any]) -> Actor:
    """The actor as a browser session whose allauth authentication records are `records`."""
    request = RequestFactory().get("/")
    request.user = actor.user
    request.session = SessionStore()
    request.session["account_authentication_methods"] = list(records)
    request.session["account_authentication_methods_user"] = str(actor.user.pk)
    return Actor(actor.user, actor.membership, authentication=SessionAuthentication(request))


def password(at: float) -> dict[str, Any]:
    return {"method": "password", "at": at}


def code(at: float, kind: str = "totp") -> dict[str, Any]:
    return {"method": "mfa", "type": kind, "at": at, "reauthenticated": True}


def passkey(at: float) -> dict[str, Any]:
    return {"method": "mfa", "type": "webauthn", "at": at, "passwordless": True}


# --- The proof -------------------------------------------------------------------------------


def test_no_session_never_steps_up(matrix: TenantMatrix, now: Clock) -> None:
    with pytest.raises(StepUpRequired, match="an API token cannot"):
        require_step_up(stale(matrix.a.owner))


def test_a_password_counts_for_five_minutes(matrix: TenantMatrix, now: Clock) -> None:
    actor = session_actor(matrix.a.owner, password(T0))
    require_step_up(actor)
    now.advance(5 * MINUTE)
    require_step_up(actor)
    now.advance(1)
    with pytest.raises(StepUpRequired):
        require_step_up(actor)


def test_a_proof_from_the_future_does_not_count(matrix: TenantMatrix, now: Clock) -> None:
    with pytest.raises(StepUpRequired):
        require_step_up(session_actor(matrix.a.owner, password(T0 + MINUTE)))


def test_with_totp_enrolled_the_password_alone_is_not_enough(
    matrix: TenantMatrix, now: Clock
) -> None:
    TOTP.activate(matrix.a.owner.user, generate_totp_secret())
    with pytest.raises(StepUpRequired):
        require_step_up(session_actor(matrix.a.owner, password(T0)))
    require_step_up(session_actor(matrix.a.owner, password(T0), code(T0 - MINUTE)))
    require_step_up(session_actor(matrix.a.owner, password(T0), code(T0, "recovery_codes")))
    # Both must be fresh: an old code with a new password is not a step-up.
    with pytest.raises(StepUpRequired):
        require_step_up(session_actor(matrix.a.owner, password(T0), code(T0 - 6 * MINUTE)))


def test_a_remembered_session_days_old_must_prove_itself_again(
    matrix: TenantMatrix, now: Clock
) -> None:
    TOTP.activate(matrix.a.owner.user, generate_totp_secret())
    logged_in_long_ago = session_actor(
        matrix.a.owner, password(T0 - 3 * 86400), code(T0 - 3 * 86400)
    )
    with pytest.raises(StepUpRequired):
        require_step_up(logged_in_long_ago)


def test_a_passkey_alone_is_a_full_proof(matrix: TenantMatrix, now: Clock) -> None:
    TOTP.activate(matrix.a.owner.user, generate_totp_secret())
    require_step_up(session_actor(matrix.a.owner, passkey(T0)))


def test_records_of_another_user_do_not_count(matrix: TenantMatrix, now: Clock) -> None:
    actor = session_actor(matrix.a.owner, password(T0))
    actor.authentication.request.session["account_authentication_methods_user"] = str(  # type: ignore[union-attr]
        matrix.a.manager.user.pk
    )
    with pytest.raises(StepUpRequired):
        require_step_up(actor)


# --- The card window -------------------------------------------------------------------------


def test_card_work_needs_a_fresh_proof_to_start(matrix: TenantMatrix, now: Clock) -> None:
    with pytest.raises(StepUpRequired, match="15 minutes"):
        require_card_window(session_actor(matrix.a.owner, password(T0 - 6 * MINUTE)))
    with pytest.raises(StepUpRequired, match="an API token cannot"):
        require_card_window(stale(matrix.a.owner))


def test_the_card_window_slides_with_each_card_action(matrix: TenantMatrix, now: Clock) -> None:
    actor = session_actor(matrix.a.owner, password(T0))
    require_card_window(actor)
    # The password proof has long expired, but each action is within 15 minutes of the last.
    for _ in range(4):
        now.advance(CARD_WINDOW_SECONDS - 1)
        require_card_window(actor)


def test_fifteen_idle_minutes_close_the_card_window(matrix: TenantMatrix, now: Clock) -> None:
    actor = session_actor(matrix.a.owner, password(T0))
    require_card_window(actor)
    now.advance(CARD_WINDOW_SECONDS + 1)
    with pytest.raises(StepUpRequired, match="15 minutes"):
        require_card_window(actor)
    # Asked again: a fresh password opens a new window.
    actor.authentication.request.session["account_authentication_methods"].append(  # type: ignore[union-attr]
        password(now.at)
    )
    require_card_window(actor)


def test_a_refused_card_action_does_not_extend_the_window(matrix: TenantMatrix, now: Clock) -> None:
    actor = session_actor(matrix.a.owner, password(T0 - 10 * MINUTE))
    with pytest.raises(StepUpRequired):
        require_card_window(actor)
    assert actor.authentication is not None
    assert actor.authentication.card_activity_at() is None


# --- Inside the actions ----------------------------------------------------------------------


def test_token_creation_and_role_changes_ask_inside_the_action(
    matrix: TenantMatrix, now: Clock
) -> None:
    owner = session_actor(matrix.a.owner, password(T0 - 6 * MINUTE))
    act(owner)
    with pytest.raises(StepUpRequired):
        do_create_api_token(actor=owner, name="sneaky")
    with pytest.raises(StepUpRequired):
        do_change_role(matrix.a.staff.membership, Role.MANAGER, actor=owner)
    act(matrix.a.owner)
    assert not ApiToken.objects.filter(name="sneaky").exists()
    matrix.a.staff.membership.refresh_from_db()
    assert matrix.a.staff.membership.role == Role.STAFF


def test_a_stale_session_creating_a_token_is_sent_to_step_up(matrix: TenantMatrix) -> None:
    browser = HttpsClient().act_as(matrix.a.owner)
    age_session(browser, 10 * MINUTE)
    answer = browser.post(
        "/app/tokens/new/", {"name": "laptop"}, HTTP_REFERER="https://testserver/app/tokens/"
    )
    assert answer.status_code == 302
    assert answer["Location"] == "/app/step-up/?next=%2Fapp%2Ftokens%2F"
    act(matrix.a.owner)
    assert not ApiToken.objects.filter(name="laptop").exists()
    # The step-up page asks for the password first.
    step = browser.get(answer["Location"])
    assert step.status_code == 302
    assert step["Location"].startswith("/accounts/reauthenticate/?next=")


def test_the_step_up_page_asks_for_the_code_after_the_password(matrix: TenantMatrix) -> None:
    TOTP.activate(matrix.a.owner.user, generate_totp_secret())
    browser = HttpsClient().act_as(matrix.a.owner)  # a fresh password, no code yet
    step = browser.get("/app/step-up/", {"next": "/app/tokens/"})
    assert step.status_code == 302
    assert step["Location"].startswith("/accounts/2fa/reauthenticate/?next=")


def test_the_step_up_page_returns_when_complete_and_never_off_site(
    matrix: TenantMatrix,
) -> None:
    browser = HttpsClient().act_as(matrix.a.owner)
    assert browser.get("/app/step-up/", {"next": "/app/tokens/"})["Location"] == "/app/tokens/"
    for elsewhere in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        assert browser.get("/app/step-up/", {"next": elsewhere})["Location"] == "/app/"


def test_a_fresh_session_creates_a_token(matrix: TenantMatrix) -> None:
    browser = HttpsClient().act_as(matrix.a.owner)
    answer = browser.post("/app/tokens/new/", {"name": "laptop"})
    assert answer.status_code == 200
    act(matrix.a.owner)
    assert ApiToken.objects.filter(name="laptop").exists()


def test_granting_or_taking_away_the_run_of_the_business_asks_inside_the_action(
    matrix: TenantMatrix, now: Clock
) -> None:
    from custodia.tenancy.actions import (
        do_deactivate_member,
        do_invite_member,
        do_update_security_policy,
    )
    from custodia.tenancy.models import Business, Invitation

    owner = session_actor(matrix.a.owner, password(T0 - 6 * MINUTE))
    act(owner)
    # Staff too: a staff member sees door codes around their visits (tests/security/
    # test_door_codes.py); client portal invitations stay everyday work.
    for role in (Role.OWNER, Role.MANAGER, Role.STAFF):
        with pytest.raises(StepUpRequired):
            do_invite_member(actor=owner, email=f"{role}@example.test", role=role)
    with pytest.raises(StepUpRequired):
        do_deactivate_member(matrix.a.staff.membership, actor=owner)
    with pytest.raises(StepUpRequired):
        do_update_security_policy(
            matrix.a.owner.business,
            session_idle_minutes=120,
            mfa_required_owners=False,
            mfa_required_managers=False,
            mfa_required_staff=False,
            actor=owner,
        )
    act(matrix.a.owner)
    assert not Invitation.objects.filter(
        email__in=["owner@example.test", "manager@example.test", "staff@example.test"]
    )
    matrix.a.staff.membership.refresh_from_db()
    assert matrix.a.staff.membership.is_active
    assert Business.objects.get(pk=matrix.a.owner.tenant_id).session_idle_minutes == 30
    do_invite_member(
        actor=owner, email="hannah@example.test", role=Role.CLIENT, client=matrix.a.client
    )


def test_a_stale_session_changing_the_security_policy_is_sent_to_step_up(
    matrix: TenantMatrix,
) -> None:
    browser = HttpsClient().act_as(matrix.a.owner)
    age_session(browser, 10 * MINUTE)
    answer = browser.post(
        "/app/business/security/",
        {"session_idle_minutes": "120"},
        HTTP_REFERER="https://testserver/app/business/security/",
    )
    assert answer.status_code == 302 and answer["Location"].startswith("/app/step-up/")


def test_with_only_a_security_key_the_password_alone_is_not_enough(
    matrix: TenantMatrix, now: Clock
) -> None:
    from allauth.mfa.models import Authenticator

    Authenticator.objects.create(
        user=matrix.a.owner.user, type=Authenticator.Type.WEBAUTHN, data={"credential": {}}
    )
    with pytest.raises(StepUpRequired):
        require_step_up(session_actor(matrix.a.owner, password(T0)))
    key = {"method": "mfa", "type": "webauthn", "at": T0, "reauthenticated": True}
    require_step_up(session_actor(matrix.a.owner, password(T0), key))


def test_a_stale_session_cannot_remove_a_factor_or_change_the_password(
    matrix: TenantMatrix,
) -> None:
    TOTP.activate(matrix.a.owner.user, generate_totp_secret())
    browser = HttpsClient().act_as(matrix.a.owner)  # a fresh password, no code: not enough
    for path, data in (
        ("/accounts/2fa/totp/deactivate/", {}),
        ("/accounts/password/change/", {"oldpassword": "x", "password1": "y", "password2": "y"}),
        ("/accounts/email/", {"email": "attacker@example.test", "action_add": ""}),
    ):
        answer = browser.post(path, data)
        assert answer.status_code == 302 and answer["Location"].startswith("/app/step-up/"), path
    from allauth.mfa.models import Authenticator

    assert Authenticator.objects.filter(user=matrix.a.owner.user).exists()
