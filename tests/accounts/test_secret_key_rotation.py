"""Rotating SECRET_KEY: with the old key among the fallbacks nobody is locked out or logged out,
start-up re-seals the two-factor secrets and use re-digests API tokens, so the fallback can then
be retired; without it, start-up refuses instead of locking out everyone with two-factor."""

from __future__ import annotations

import json
from typing import Any

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.contrib.auth.tokens import default_token_generator
from django.core.management.base import CommandError
from django.urls import reverse

from custodia.accounts import mfa
from custodia.accounts.access import TOKEN_PURPOSE
from custodia.accounts.digests import digest_secret
from custodia.accounts.models import ApiToken, User
from custodia.ops.management.commands.setup import reseal_after_key_rotation
from tests.accounts.test_mfa import NOW, enrol_totp, password_login, totp_now
from tests.acting import act

NEW_KEY = "new-" + "k7Qz9wX2mP4vR8sT1uY6bN3cD5fG0hJ" * 2
OTHER_KEY = "other-" + "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV" * 2


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Any) -> None:
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


def sealed_values(user: User) -> list[str]:
    rows = Authenticator.objects.filter(user=user).values_list("data", flat=True)
    return [row[name] for row in rows for name in mfa.SEALED_FIELDS if name in row]


def token_digest(actor: Any) -> str:
    act(actor)
    return ApiToken.objects.get(user=actor.user, tenant_id=actor.tenant_id).digest


def signs_in_with(user: User, code: str) -> bool:
    client, response = password_login(user)
    assert response["Location"] == reverse("mfa_authenticate")
    client.post(reverse("mfa_authenticate"), {"code": code})
    return client.get(reverse("dashboard")).status_code == 200


def test_rotation_with_the_old_key_as_fallback_keeps_everyone_in(settings, matrix, api_as, web_as):
    owner = matrix.a.owner
    old_key = settings.SECRET_KEY
    with time_machine.travel(NOW, tick=False):
        secret = enrol_totp(owner.user)
        codes = RecoveryCodes.activate(owner.user).generate_codes()
        session, idle_session = web_as(owner), web_as(owner)
        api = api_as(owner)
        assert session.get("/app/").status_code == 200
        old_digest = token_digest(owner)

        settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [old_key]
        # Before start-up re-seals: still readable, through the fallback.
        assert signs_in_with(owner.user, totp_now(secret))
        reseal_after_key_rotation()
        assert all(mfa.is_sealed_under_current_key(value) for value in sealed_values(owner.user))
        assert secret not in json.dumps(sealed_values(owner.user))

        # The session signed in before the rotation is still signed in; the old token works and
        # is re-digested under the new key at that use.
        assert session.get("/app/").status_code == 200
        assert api.get("/api/v1/clients").status_code == 200
        token_secret = api.defaults["HTTP_AUTHORIZATION"].split("_", 2)[2]
        assert token_digest(owner) != old_digest
        assert token_digest(owner) == digest_secret(TOKEN_PURPOSE, token_secret)

    # The fallback retired: the re-sealed factor, the recovery codes and the token still work;
    # the session used meanwhile was moved to the new key (Django re-stamps it), the one not used
    # since the rotation ends.
    with time_machine.travel(NOW + 30, tick=False):
        settings.SECRET_KEY_FALLBACKS = []
        assert session.get("/app/").status_code == 200
        assert idle_session.get("/app/").status_code == 302
        assert signs_in_with(owner.user, totp_now(secret, NOW + 30))
        assert signs_in_with(owner.user, codes[0])
        assert api.get("/api/v1/clients").status_code == 200


def test_a_new_key_without_the_old_one_refuses_to_start_and_changes_nothing(settings, matrix):
    user = matrix.a.manager.user
    enrol_totp(user)
    RecoveryCodes.activate(user)
    before = sealed_values(user)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OTHER_KEY, []
    with pytest.raises(CommandError) as refused:
        reseal_after_key_rotation()
    message = str(refused.value)
    assert "2 two-factor secret(s)" in message
    assert "CUSTODIA_SECRET_KEY_FALLBACKS" in message
    assert not any(value in message for value in before)
    assert sealed_values(user) == before


def test_a_token_made_under_a_retired_key_no_longer_works(settings, matrix, api_as):
    api = api_as(matrix.a.staff)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, []
    assert api.get("/api/v1/clients").status_code == 401


def test_legacy_v1_ciphertexts_are_read_and_resealed(settings, matrix):
    import base64
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    user = matrix.a.staff.user
    plain = enrol_totp(user)
    nonce = os.urandom(12)
    sealed = AESGCM(mfa._key(settings.SECRET_KEY)).encrypt(nonce, plain.encode(), mfa._KEY_INFO)
    legacy = mfa.LEGACY_PREFIX + base64.b64encode(nonce + sealed).decode()
    totp = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    totp.data["secret"] = legacy
    totp.save(update_fields=["data"])
    assert mfa.decrypt_secret(legacy) == plain
    reseal_after_key_rotation()
    totp.refresh_from_db()
    assert totp.data["secret"].startswith(mfa.CIPHERTEXT_PREFIX)
    assert mfa.decrypt_secret(totp.data["secret"]) == plain


def test_a_ciphertext_naming_another_key_is_not_tried_with_this_one(settings):
    stored = mfa.encrypt_secret("seed-value")
    key_id = stored.split(":")[1]
    forged = stored.replace(key_id, "0" * len(key_id))
    with pytest.raises(Exception, match="CUSTODIA_SECRET_KEY_FALLBACKS"):
        mfa.decrypt_secret(forged)
    with pytest.raises(Exception, match="encrypted format"):
        mfa.decrypt_secret(stored[:-3] + "!!!")


def test_reset_links_work_through_the_fallback_and_end_with_it(settings, matrix):
    user = matrix.a.staff.user
    old_key = settings.SECRET_KEY
    link_token = default_token_generator.make_token(user)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [old_key]
    assert default_token_generator.check_token(user, link_token)
    settings.SECRET_KEY_FALLBACKS = []
    assert not default_token_generator.check_token(user, link_token)
