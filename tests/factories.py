"""Test data: factories with traits, and the two-business tenant matrix every endpoint faces."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from dataclasses import dataclass

import factory
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.hashers import get_hasher, make_password
from django.utils import timezone

from custodia.accounts import stepup
from custodia.accounts.models import User
from custodia.clients.actions import do_assign_staff, do_create_client
from custodia.clients.models import Client
from custodia.core.actor import Actor
from custodia.core.permissions import Role
from custodia.scheduling.actions import do_create_service, do_create_visit
from custodia.scheduling.models import Service, Visit
from custodia.tenancy.actions import do_create_business
from custodia.tenancy.models import Membership
from tests.acting import act

PASSWORD = "correct horse battery staple 42"


def hashed_password() -> str:
    """The stored form of PASSWORD (argon2id costs ~20 ms; the matrix makes ten users a test)."""
    return _hashed_with(settings.PASSWORD_HASHERS[0])


@functools.cache
def _hashed_with(hasher: str) -> str:
    # Keyed by hasher: some test modules switch to a fast one, and a hash must match the setting.
    return make_password(PASSWORD, hasher=get_hasher("default"))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Faker("name")
    # One real argon2id hash of PASSWORD, computed once and shared: logins still verify it.
    password = factory.LazyFunction(lambda: hashed_password())

    class Params:
        inactive = factory.Trait(is_active=False)

    @factory.post_generation
    def verified(self, create: bool, extracted: bool | None, **kwargs: object) -> None:
        if create and extracted is not False:
            EmailAddress.objects.create(user=self, email=self.email, verified=True, primary=True)


class JustAuthenticated:
    """The proof of a person who has just logged in with everything they have enrolled.

    Matrix actors carry it, so sensitive actions pass their step-up; tests of the step-up itself
    use `stale(actor)` or a real session (tests/accounts/test_stepup.py).
    """

    def stepped_up_at(self) -> float | None:
        return stepup.clock()

    def card_activity_at(self) -> float | None:
        return None

    def note_card_activity(self, at: float) -> None:
        return None


def authenticated(actor: Actor) -> Actor:
    return dataclasses.replace(actor, authentication=JustAuthenticated())


def stale(actor: Actor) -> Actor:
    """The same actor with no proof of recent authentication (as from an API token)."""
    return dataclasses.replace(actor, authentication=None)


def add_member(owner: Actor, user: User, role: Role, client: Client | None = None) -> Actor:
    """Add `user` to the owner's business directly (the invitation flow is tested on its own)."""
    act(owner)
    membership = Membership.objects.create(
        tenant_id=owner.tenant_id, user=user, role=role, client=client
    )
    return authenticated(Actor(user, membership))


@dataclass
class Business:
    owner: Actor
    manager: Actor
    staff: Actor
    other_staff: Actor
    client_login: Actor
    client: Client  # assigned to `staff`; has the portal login `client_login`
    other_client: Client  # assigned to nobody
    service: Service
    visit: Visit  # `staff` visits `client`, starting in two hours


@dataclass
class TenantMatrix:
    """Two businesses: `a` with every role, `b` whose owner is the outsider."""

    a: Business
    b: Business

    @property
    def outsider(self) -> Actor:
        return self.b.owner


def build_business(name: str) -> Business:
    owner_user = UserFactory(full_name=f"{name} Owner")
    owner = authenticated(do_create_business(name=name, owner=owner_user))
    manager = add_member(owner, UserFactory(), Role.MANAGER)
    staff = add_member(owner, UserFactory(), Role.STAFF)
    other_staff = add_member(owner, UserFactory(), Role.STAFF)
    act(owner)
    client = do_create_client(
        actor=owner,
        name=f"{name} Client",
        email=f"client@{name.lower()}.test",
        phone="+1 555 0100",
        address="1 Main Street",
        notes="Cat: Miso",
        instructions="Key under the mat",
        door_code="4711",
        alarm_code="0815",
    )
    other_client = do_create_client(actor=owner, name=f"{name} Other", door_code="9999")
    client_login = add_member(owner, UserFactory(), Role.CLIENT, client=client)
    act(owner)
    do_assign_staff(client, staff.membership, actor=owner)
    service = do_create_service(actor=owner, name="Walk", duration_minutes=60, price_cents=2500)
    start = timezone.now() + dt.timedelta(hours=2)
    visit = do_create_visit(
        actor=owner, client=client, staff=staff.membership, service=service, starts_at=start
    )
    return Business(
        owner, manager, staff, other_staff, client_login, client, other_client, service, visit
    )


def build_matrix() -> TenantMatrix:
    return TenantMatrix(a=build_business("Alpha"), b=build_business("Bravo"))
