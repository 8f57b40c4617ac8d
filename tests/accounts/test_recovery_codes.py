"""Recovery codes stored as one hash each: a dump, with or without SECRET_KEY, yields no code;
each code works once; codes made from allauth's seed before are turned into hashes unchanged."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal import auth as allauth_codes
from django.urls import reverse

from custodia.accounts import mfa, recoverycodes
from custodia.accounts.models import User
from tests.accounts.test_mfa import enrol_totp, password_login, reauthenticate, totp_now

CODE = re.compile(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}")


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Any) -> None:
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


def stored(user: User) -> dict[str, Any]:
    row = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    return dict(row.data)


def everything_a_dump_and_the_key_open(user: User) -> str:
    """The rows as stored, plus every sealed value decrypted with SECRET_KEY."""
    opened = []
    for data in Authenticator.objects.filter(user=user).values_list("data", flat=True):
        for name in mfa.SEALED_FIELDS:
            if name in data:
                opened.append(mfa.decrypt_secret(data[name]))
    return json.dumps(list(Authenticator.objects.filter(user=user).values("data"))) + "".join(
        opened
    )


def signs_in_with(user: User, code: str) -> bool:
    client, _ = password_login(user)
    client.post(reverse("mfa_authenticate"), {"code": code})
    return client.get(reverse("dashboard")).status_code == 200


def test_allauth_uses_the_hashed_codes():
    assert allauth_codes.RecoveryCodes is recoverycodes.HashedRecoveryCodes


def test_codes_are_shown_once_then_only_their_hashes_remain(web_as, matrix):
    owner = matrix.a.owner
    client = web_as(owner)
    reauthenticate(client)
    with time_machine.travel(time.time(), tick=False):
        client.get(reverse("mfa_activate_totp"))
        secret = client.session["mfa.totp.secret"]
        response = client.post(
            reverse("mfa_activate_totp"), {"code": totp_now(secret, time.time())}
        )
        assert response["Location"] == reverse("mfa_view_recovery_codes")
        # Until shown, the codes wait sealed (a dump alone has none of them).
        assert set(stored(owner.user)) == {"hashes", "used_mask", "pending"}
        page = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    codes = sorted(set(re.findall(r"\b[a-z2-7]{4}(?:-[a-z2-7]{4}){3}\b", page)))
    assert len(codes) == 10
    data = stored(owner.user)
    assert set(data) == {"hashes", "used_mask", "viewed_at"}
    assert sorted(data["hashes"]) == sorted(
        hashlib.sha256(code.replace("-", "").encode()).hexdigest() for code in codes
    )
    # A dump plus SECRET_KEY: no code, no seed to make them from.
    opened = everything_a_dump_and_the_key_open(owner.user)
    for code in codes:
        assert code not in opened and code.replace("-", "") not in opened
    # The page does not show them again.
    again = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert not any(code in again for code in codes)


def test_each_code_works_once_typed_any_way(matrix):
    user = matrix.a.manager.user
    enrol_totp(user)
    codes = recoverycodes.HashedRecoveryCodes.activate(user).generate_codes()
    assert len(codes) == 10 and all(CODE.fullmatch(code) for code in codes)
    assert signs_in_with(user, codes[0].upper().replace("-", " "))
    assert not signs_in_with(user, codes[0])
    assert not signs_in_with(user, "aaaa-aaaa-aaaa-aaaa")
    assert not signs_in_with(user, "----")
    assert signs_in_with(user, codes[9])
    rc = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES).wrap()
    assert len(rc.get_unused_codes()) == 8


def test_another_persons_code_does_not_work(matrix):
    mine, theirs = matrix.a.manager.user, matrix.a.owner.user
    enrol_totp(mine)
    enrol_totp(theirs)
    recoverycodes.HashedRecoveryCodes.activate(mine)
    their_codes = recoverycodes.HashedRecoveryCodes.activate(theirs).generate_codes()
    assert not signs_in_with(mine, their_codes[0])


def test_codes_made_from_allauths_seed_turn_into_hashes_and_keep_working(matrix):
    user = matrix.a.staff.user
    enrol_totp(user)
    seed = recoverycodes.SeededRecoveryCodes.generate_seed()
    Authenticator.objects.create(
        user=user,
        type=Authenticator.Type.RECOVERY_CODES,
        data={"seed": mfa.encrypt_secret(seed), "used_mask": 0},
    )
    row = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    old_codes = recoverycodes.SeededRecoveryCodes(row).generate_codes()
    # Before the turn, allauth's check still answers for them.
    assert signs_in_with(user, old_codes[0])
    assert recoverycodes.hash_seeded_codes() == 1
    data = stored(user)
    assert "seed" not in data and len(data["hashes"]) == 10 and data["used_mask"] == 1
    assert not signs_in_with(user, old_codes[0])
    assert signs_in_with(user, old_codes[1])
    assert recoverycodes.hash_seeded_codes() == 0
