"""Shared fixtures: a fresh migrated database as custodia_app, the tenant matrix, HTTPS clients."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from custodia.core.actor import Actor
from custodia.tenancy.actors import ACTIVE_BUSINESS_SESSION_KEY
from tests import caches as caches_for_tests
from tests.acting import act, close_scope, open_scope
from tests.factories import TenantMatrix, build_matrix

pytest_plugins = ("tests.mail",)


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker: Any) -> Iterator[None]:
    """Recreate the test database, migrate it as custodia_owner; tests then run as custodia_app."""
    from custodia.ops.management.commands.setup import drop_database, prepare_database

    # One database per pytest process, so parallel runs on one machine never drop each other's.
    name = f"{settings.DATABASES['default']['TEST']['NAME']}_{os.getpid()}"
    with django_db_blocker.unblock():
        prepare_database(name, fresh=True)
    yield
    with django_db_blocker.unblock():
        drop_database(name)


@pytest.fixture(autouse=True)
def acting_scope() -> Iterator[None]:
    """Each test acts (tests/acting.py: `act`) in a scope of its own; set up before the
    database fixtures, so it closes after the test's transaction has rolled back."""
    scope = open_scope()
    yield
    close_scope(scope)


@pytest.fixture(autouse=True)
def no_chance_purges(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache's and the API rate limit's one-in-1000 purge never runs by chance in a test: it
    made statement counts and row counts random (two CI failures). Their tests set it to 1."""
    from custodia.api import ratelimit
    from custodia.cache import backend

    monkeypatch.setattr(backend, "PURGE_ONE_IN", 0)
    monkeypatch.setattr(ratelimit, "PURGE_ONE_IN", 0)


@pytest.fixture(autouse=True)
def mail_at_once(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mail goes out at once, not after the commit: a test's transaction never commits.

    Tests of the after-commit sending itself (tests/accounts/test_mail_delivery.py) are marked
    `mail_after_commit` and keep the production behaviour.
    """
    if request.node.get_closest_marker("mail_after_commit") is not None:
        return
    from custodia.accounts import adapter

    monkeypatch.setattr(adapter, "send_after_commit", lambda message: message.send())


@pytest.fixture(autouse=True, scope="session")
def private_hash_slots(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each pytest process hashes passwords in slots of its own (accounts/hashers.py), so that
    parallel test runs on one machine never answer each other's logins with a 503."""
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path_factory.mktemp("hash-slots")


@pytest.fixture(autouse=True, scope="session")
def private_keystore(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Businesses made by tests keep their data keys in a keystore of this pytest process
    (a test's transaction rolls back; its key files would otherwise pile up under var/)."""
    from custodia.crypto import keyring

    settings.KEYSTORE_DIR = tmp_path_factory.mktemp("keystore")
    keyring.reset()


DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup"}


@pytest.fixture(autouse=True, scope="session")
def private_redis_prefix() -> None:
    """With CUSTODIA_REDIS_URL set, tests key their entries under this run's own prefix."""
    if settings.CACHES["default"]["BACKEND"] != "custodia.cache.backend.PostgresCache":
        settings.CACHES = caches_for_tests.redis_caches(settings.CACHES["default"]["LOCATION"])


@pytest.fixture(autouse=True)
def empty_cache_after(request: pytest.FixtureRequest) -> Iterator[None]:
    """The cache and the sign-in throttle are written outside the test's transaction (as
    outside a request's): what a test counted is removed after it, so that no limit or pause
    carries over to the next test."""
    yield
    uses_database = request.node.get_closest_marker("django_db") is not None or bool(
        DATABASE_FIXTURES & set(request.fixturenames)
    )
    if uses_database:
        caches_for_tests.empty_cache()
        caches_for_tests.forget_sign_in_failures()


@pytest.fixture(params=["postgres", "redis"])
def cache_backend(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """Runs the test once on each cache backend: the UNLOGGED table, and the real Redis."""
    if request.param == "redis":
        caches_for_tests.require_redis()
        settings.CACHES = caches_for_tests.redis_caches()
    yield request.param
    caches_for_tests.empty_cache()


@pytest.fixture
def matrix(db: None) -> TenantMatrix:
    return build_matrix()


class HttpsClient(Client):
    """Django's test client, speaking as if over HTTPS (plain HTTP is redirected)."""

    def generic(self, method: str, path: Any, *args: Any, **kwargs: Any) -> Any:
        """Every request over HTTPS (each call's `secure=False` default would reset the scheme)."""
        kwargs["secure"] = True
        return super().generic(method, path, *args, **kwargs)

    def act_as(self, actor: Actor) -> HttpsClient:
        """Log in as the actor's user with the actor's business selected."""
        self.force_login(actor.user)
        session = self.session
        session[ACTIVE_BUSINESS_SESSION_KEY] = str(actor.tenant_id)
        # What allauth records at a password login (accounts/stepup.py reads it): the session
        # has just authenticated, as a real login would have.
        session["account_authentication_methods"] = [{"method": "password", "at": time.time()}]
        session["account_authentication_methods_user"] = str(actor.user.pk)
        session.save()
        return self


@pytest.fixture
def web(db: None) -> HttpsClient:
    return HttpsClient()


@pytest.fixture
def web_as(db: None) -> Any:
    """`web_as(actor)`: a fresh HTTPS client logged in as that actor."""

    def make(actor: Actor) -> HttpsClient:
        return HttpsClient().act_as(actor)

    return make


@pytest.fixture
def api_as(db: None) -> Any:
    """`api_as(actor)`: an HTTPS client carrying a bearer token of that actor (all role scopes)."""
    from custodia.accounts.actions import do_create_api_token

    def make(actor: Actor) -> HttpsClient:
        act(actor)
        _token, plain = do_create_api_token(actor=actor, name="test")
        return HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}")

    return make
