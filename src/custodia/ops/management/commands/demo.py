"""`custodia demo`: one demo business to click through, seeded once with the real actions."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import urllib3
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from custodia.accounts.models import User
from custodia.clients.actions import do_assign_staff, do_create_client
from custodia.clients.models import Client
from custodia.clients.profile_actions import do_create_pet, do_update_household
from custodia.core.actor import Actor, acting_as
from custodia.core.dbcontext import set_db_context
from custodia.core.permissions import Role
from custodia.payments.actions.cards import (
    do_add_card,
    do_charge_invoice,
    do_refund_payment,
    do_start_card_form,
    send_charge,
    send_refund,
)
from custodia.payments.actions.catalog import do_create_pass_type, do_create_plan
from custodia.payments.actions.invoices import (
    do_add_invoice_line,
    do_create_invoice,
    do_issue_invoice,
    do_record_payment,
)
from custodia.payments.actions.passes import do_sell_pass, do_start_membership
from custodia.payments.models import (
    ClientPass,
    Invoice,
    PassType,
    PaymentMethod,
    PaymentStatus,
    PaymentType,
    RefundStatus,
)
from custodia.scheduling.actions import (
    do_create_service,
    do_create_visit,
    do_request_visit,
    do_update_visit,
)
from custodia.scheduling.models import Service, VisitStatus
from custodia.scheduling.reporting import do_add_visit_photo
from custodia.scheduling.series import Frequency, Repeat, do_create_series
from custodia.tenancy.actions import do_create_business
from custodia.tenancy.actors import console_actor
from custodia.tenancy.models import Business, Membership

DEMO_SLUG = "demo"
DEMO_NAME = "Paws & Claws Pet Sitting"
CREDENTIALS_FILE = "demo-credentials.txt"

# (role, email, full name); the owner comes first.
PEOPLE = [
    (Role.OWNER, "olivia.park@example.com", "Olivia Park"),
    (Role.MANAGER, "marcus.reyes@example.com", "Marcus Reyes"),
    (Role.STAFF, "priya.shah@example.com", "Priya Shah"),
    (Role.STAFF, "tom.becker@example.com", "Tom Becker"),
]


@dataclass(frozen=True)
class DemoClient:
    name: str
    email: str
    phone: str
    address: str
    pets: str
    notes: str
    instructions: str
    door_code: str
    alarm_code: str
    service: str  # key into SERVICES


SERVICES = {
    "walk": ("Dog walk", 45, 2500),
    "drop-in": ("Drop-in visit", 30, 2000),
    "overnight": ("Overnight stay", 720, 9500),
}

CLIENTS = [
    DemoClient(
        "Hannah Lee",
        "hannah.lee@example.com",
        "+1 555 0101",
        "14 Maple Street, Springfield",
        "Bella",
        "Bella is a 4-year-old golden retriever. Pulls on the lead near squirrels.",
        "Key in the lockbox by the side gate.",
        "4821",
        "1739",
        "walk",
    ),
    DemoClient(
        "Daniel Okafor",
        "daniel.okafor@example.com",
        "+1 555 0102",
        "3B Harbour View Apartments, 220 Quay Road, Springfield",
        "Miso and Tofu",
        "Two indoor cats. Tofu needs half a pill in wet food every evening.",
        "Concierge holds a key; show ID.",
        "0352",
        "",
        "drop-in",
    ),
    DemoClient(
        "Sofia Martinez",
        "sofia.martinez@example.com",
        "+1 555 0103",
        "87 Orchard Lane, Springfield",
        "Pepper",
        "Beagle, very food-motivated. Keep the bin lid closed.",
        "Back door; key under the blue planter.",
        "7710",
        "2468",
        "walk",
    ),
    DemoClient(
        "James Whitaker",
        "james.whitaker@example.com",
        "+1 555 0104",
        "5 Church Close, Lower Ashby",
        "Rufus",
        "Senior labrador with arthritis: short, slow walks. Joint supplement at breakfast.",
        "Front door keypad.",
        "1905",
        "8080",
        "walk",
    ),
    DemoClient(
        "Aisha Rahman",
        "aisha.rahman@example.com",
        "+1 555 0105",
        "41 Elm Avenue, Springfield",
        "Luna",
        "Shy tabby; hides under the bed. Check she has eaten.",
        "Key with the neighbour at no. 43 (Mrs Ortiz).",
        "",
        "5521",
        "drop-in",
    ),
    DemoClient(
        "Ethan Brooks",
        "ethan.brooks@example.com",
        "+1 555 0106",
        "9 Willow Court, Springfield",
        "Max and Ruby",
        "Two border collies. Walk separately; Ruby is reactive to other dogs.",
        "Garage side door keypad, then inner door.",
        "3141",
        "2718",
        "walk",
    ),
    DemoClient(
        "Grace Kim",
        "grace.kim@example.com",
        "+1 555 0107",
        "120 Riverside Drive, Flat 6, Springfield",
        "Clover and Nori",
        "House rabbit (Clover) and a cat (Nori). Fresh hay daily; keep them apart.",
        "Buzz flat 6; key in lockbox on the bike rack.",
        "6006",
        "",
        "drop-in",
    ),
    DemoClient(
        "Liam O'Connor",
        "liam.oconnor@example.com",
        "+1 555 0108",
        "2 Mill Cottages, Hedley",
        "Scout",
        "Young spaniel, lots of energy. Towel off after muddy walks.",
        "Key in the key safe by the porch.",
        "9090",
        "1122",
        "walk",
    ),
    DemoClient(
        "Mei Chen",
        "mei.chen@example.com",
        "+1 555 0109",
        "55 Station Road, Springfield",
        "Sesame",
        "Elderly cat on a kidney diet: only the food in the labelled tin.",
        "Front door keypad.",
        "2580",
        "0000",
        "drop-in",
    ),
    DemoClient(
        "Noah Patel",
        "noah.patel@example.com",
        "+1 555 0110",
        "18 Beech Grove, Springfield",
        "Biscuit",
        "Anxious rescue greyhound; overnight sitter sleeps in the spare room.",
        "Key in the lockbox behind the recycling bins.",
        "7314",
        "9512",
        "overnight",
    ),
    DemoClient(
        "Chloe Dubois",
        "chloe.dubois@example.com",
        "+1 555 0111",
        "7 Rue Cottage, Old Town, Springfield",
        "Kiwi",
        "African grey parrot. Talks a lot; do not open the cage near open windows.",
        "Side door; key under the stone frog.",
        "4455",
        "",
        "drop-in",
    ),
    DemoClient(
        "Samuel Adeyemi",
        "samuel.adeyemi@example.com",
        "+1 555 0112",
        "63 Hillcrest Road, Springfield",
        "Juno",
        "Husky, escape artist: check the garden gate is latched.",
        "Front door keypad.",
        "8642",
        "1357",
        "walk",
    ),
]
# Pets (docs/profiles.md), by index into CLIENTS: name, species, breed, age in years, feeding,
# medication, vet. Invented, like everything here.
DEMO_VET = ("Springfield Animal Clinic", "+1 555 0190")
PETS = [
    (0, "Bella", "dog", "Golden retriever", 4, "One cup of kibble at 7:00 and 18:00.", ""),
    (1, "Miso", "cat", "Domestic shorthair", 6, "Wet food morning and evening.", ""),
    (1, "Tofu", "cat", "Siamese", 9, "Wet food morning and evening.", "Half a pill in wet food."),
    (3, "Rufus", "dog", "Labrador", 12, "Senior food, small portions.", "Joint supplement."),
    (4, "Luna", "cat", "Tabby", 5, "Half a pouch at 8:00 and 18:00; check she ate.", ""),
    (5, "Max", "dog", "Border collie", 5, "Two cups of kibble at 8:00.", ""),
    (5, "Ruby", "dog", "Border collie", 3, "Two cups of kibble at 8:00.", ""),
    (6, "Clover", "rabbit", "Lionhead", 2, "Fresh hay daily, a handful of greens.", ""),
    (6, "Nori", "cat", "", 7, "Dry food, topped up once a day.", ""),
    (9, "Biscuit", "dog", "Greyhound", 6, "Soaked kibble at 7:00 and 19:00.", "Calming chew."),
]
# Household details, by index into CLIENTS: keys held, parking, Wi-Fi network and password,
# emergency contact.
HOUSEHOLDS = {
    0: (
        "One front-door key, tag 3",
        "Driveway",
        "Lee-Home",
        "demo-bella-4",
        "Sam Lee, +1 555 0181",
    ),
    1: ("Concierge holds the key", "Visitor bay 2", "Harbour-3B", "demo-miso-9", ""),
    5: ("Two keys, tag 11", "On the street", "Brooks", "demo-collie-2", "Ann Brooks, +1 555 0185"),
    9: (
        "Front and back door, tag 7",
        "Driveway",
        "Patel",
        "demo-biscuit",
        "Raj Patel, +1 555 0189",
    ),
}
PORTAL_CLIENT = 0  # Hannah Lee gets the client-portal login
# The sandbox's approving Visa test card (docs/payments.md, "Test cards"): never a real card.
DEMO_CARD = "4242424242424242"
OPEN_INVOICE_CLIENT = 1  # her completed visits are invoiced (an open invoice)
MEMBER_CLIENT = 4  # Daily walker member: her visits take the membership's credits
# Staff (by index into PEOPLE) and the clients (by index into CLIENTS) they are assigned to.
ASSIGNMENTS = {2: [0, 1, 2, 3, 4, 5], 3: [4, 5, 6, 7, 8, 9]}
# Daily visit slots per staff member (hour, minute); clients rotate through them.
SLOTS = {2: [(8, 0), (17, 30)], 3: [(9, 0), (13, 0)]}
# Overnight stays: Tom (PEOPLE[3]) at Noah's (CLIENTS[9]), two nights, from 20:00.
OVERNIGHT_STAFF, OVERNIGHT_CLIENT, OVERNIGHT_DAYS, OVERNIGHT_AT = 3, 9, (-2, 1), (20, 0)
REPORTS = {
    "walk": "{pets}: {minutes}-minute walk around the park, water refilled, all happy.",
    "drop-in": "{pets}: fed, litter/hay done, fresh water, some play time. All well.",
    "overnight": "{pets}: evening walk, settled by 22:00, slept through; breakfast at 7.",
}


def credentials_path() -> Path:
    """Where the demo logins are kept (mode 0600) so `custodia demo` can show them again."""
    return Path(settings.VAR_DIR) / CREDENTIALS_FILE


def write_credentials(path: Path, rows: list[tuple[str, str, str]]) -> str:
    """Write the email/password/role table to a file only this user can read; return the text."""
    width = max(len(email) for email, _password, _role in rows) + 2
    lines = [
        f"Custodia demo business: {DEMO_NAME}",
        f"Log in at {settings.PUBLIC_URL}/accounts/login/",
        "",
        f"{'email'.ljust(width)}{'password'.ljust(26)}role",
        *(f"{email.ljust(width)}{password.ljust(26)}{role}" for email, password, role in rows),
    ]
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an older file may have been created with a wider mode
    return text


def demo_business_exists() -> bool:
    """True once the demo business has been seeded (seen through its owner's memberships)."""
    owner = User.objects.filter(email__iexact=PEOPLE[0][1]).first()
    if owner is None:
        return False
    with transaction.atomic():
        set_db_context(user_id=owner.pk)
        return Business.objects.filter(slug=DEMO_SLUG).exists()


def demo_user(email: str, full_name: str, password: str) -> User:
    """The demo login for `email` with a fresh password and a verified address."""
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email, password, full_name=full_name)
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    return user


def at(day: dt.date, hour: int, minute: int) -> dt.datetime:
    """An aware datetime on `day` in the business's time zone."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


def seed() -> list[tuple[str, str, str]]:
    """Create the demo business with people, clients, services, a week of visits, passes and
    invoices."""
    rows: list[tuple[str, str, str]] = []
    with transaction.atomic():
        users = []
        for role, email, full_name in PEOPLE:
            password = secrets.token_urlsafe(12)
            users.append(demo_user(email, full_name, password))
            rows.append((email, password, role.value))
        created = do_create_business(name=DEMO_NAME, owner=users[0], slug=DEMO_SLUG)
        owner = console_actor(users[0], created.membership)
        with acting_as(owner):
            tenant_id = owner.membership.tenant_id
            members = [owner.membership] + [
                Membership.objects.create(tenant_id=tenant_id, user=user, role=role)
                for (role, _email, _name), user in zip(PEOPLE[1:], users[1:], strict=True)
            ]

            services = {
                key: do_create_service(
                    actor=owner, name=name, duration_minutes=minutes, price_cents=price
                )
                for key, (name, minutes, price) in SERVICES.items()
            }
            clients = [
                do_create_client(
                    actor=owner,
                    name=c.name,
                    email=c.email,
                    phone=c.phone,
                    address=c.address,
                    notes=c.notes,
                    instructions=c.instructions,
                    door_code=c.door_code,
                    alarm_code=c.alarm_code,
                )
                for c in CLIENTS
            ]
            for staff_index, client_indexes in ASSIGNMENTS.items():
                for client_index in client_indexes:
                    do_assign_staff(clients[client_index], members[staff_index], actor=owner)
            seed_profiles(owner, clients)

            # Sold before the week's visits are completed, so that they take its credits.
            demo_pass = sell_demo_pass(owner, clients[PORTAL_CLIENT])
            start_demo_membership(owner, clients[MEMBER_CLIENT])
            schedule_week(owner, members, clients, services)
            schedule_series(owner, members, clients, services)
            settle_demo_invoices(owner, demo_pass, clients[OPEN_INVOICE_CLIENT])

            portal = CLIENTS[PORTAL_CLIENT]
            password = secrets.token_urlsafe(12)
            portal_user = demo_user(portal.email, portal.name, password)
            rows.append((portal.email, password, Role.CLIENT.value))
            membership = Membership.objects.create(
                tenant_id=owner.membership.tenant_id,
                user=portal_user,
                role=Role.CLIENT,
                client=clients[PORTAL_CLIENT],
            )
            client_actor = console_actor(portal_user, membership)
            with acting_as(client_actor):
                do_request_visit(
                    actor=client_actor,
                    starts_at=at(timezone.localdate() + dt.timedelta(days=2), 10, 30),
                    service=services["walk"],
                    note="Could someone take Bella out mid-morning? I have a long meeting.",
                )
        write_credentials(credentials_path(), rows)
    return rows


def seed_profiles(owner: Actor, clients: list[Client]) -> None:
    """The demo clients' pets and household details (PETS, HOUSEHOLDS)."""
    today = timezone.localdate()
    for index, name, species, breed, years, feeding, medication in PETS:
        do_create_pet(
            clients[index],
            actor=owner,
            name=name,
            species=species,
            breed=breed,
            birthday=today.replace(year=today.year - years, day=1),
            feeding=feeding,
            medication=medication,
            vet_name=DEMO_VET[0],
            vet_phone=DEMO_VET[1],
        )
    for index, (keys, parking, wifi, password, contact) in HOUSEHOLDS.items():
        do_update_household(
            clients[index],
            actor=owner,
            keys_held=keys,
            parking=parking,
            wifi_name=wifi,
            wifi_password=password,
            emergency_contact=contact,
        )


def schedule_week(
    owner: Actor, members: list[Membership], clients: list[Client], services: dict[str, Service]
) -> None:
    """Visits from three days ago to three days ahead: past ones completed with a report."""
    today = timezone.localdate()
    now = timezone.now()
    plan: list[tuple[int, int, dt.datetime]] = []  # (staff index, client index, start)
    photographed = False
    for offset in range(-3, 4):
        day = today + dt.timedelta(days=offset)
        for staff_index, slots in SLOTS.items():
            assigned = ASSIGNMENTS[staff_index]
            for slot_number, (hour, minute) in enumerate(slots):
                client_index = assigned[(offset * len(slots) + slot_number) % len(assigned)]
                if CLIENTS[client_index].service != "overnight":
                    plan.append((staff_index, client_index, at(day, hour, minute)))
        if offset in OVERNIGHT_DAYS:
            plan.append((OVERNIGHT_STAFF, OVERNIGHT_CLIENT, at(day, *OVERNIGHT_AT)))
    for staff_index, client_index, starts_at in plan:
        demo_client = CLIENTS[client_index]
        service = services[demo_client.service]
        visit = do_create_visit(
            actor=owner,
            client=clients[client_index],
            staff=members[staff_index],
            service=service,
            starts_at=starts_at,
        )
        if visit.ends_at <= now:
            report = REPORTS[demo_client.service].format(
                pets=demo_client.pets, minutes=service.duration_minutes
            )
            do_update_visit(visit, actor=owner, status=VisitStatus.COMPLETED, report=report)
            if client_index == PORTAL_CLIENT and not photographed:
                # The portal client's first past visit has a photo (made here, not committed).
                do_add_visit_photo(visit, demo_photo(), actor=owner)
                photographed = True


def demo_photo() -> bytes:
    """A small picture for the demo's visit photo: a green lawn under a blue sky, a sun."""
    image = Image.new("RGB", (800, 600), (120, 180, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 380, 800, 600), fill=(70, 150, 60))
    draw.ellipse((620, 60, 720, 160), fill=(250, 210, 60))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def schedule_series(
    owner: Actor, members: list[Membership], clients: list[Client], services: dict[str, Service]
) -> None:
    """A repeating series: Priya's lunchtime walk with Hannah's Bella, Monday, Wednesday and
    Friday for four weeks from next Monday (scheduling/series.py)."""
    today = timezone.localdate()
    monday = today + dt.timedelta(days=7 - today.weekday())
    do_create_series(
        actor=owner,
        client=clients[PORTAL_CLIENT],
        staff=members[2],
        service=services["walk"],
        starts_at=at(monday, 12, 15),
        repeat=Repeat(Frequency.WEEKLY, weekdays=(0, 2, 4), count=12),
    )


def sell_demo_pass(owner: Actor, client: Client) -> tuple[ClientPass, Invoice]:
    """Two punch passes on sale; the portal client bought the larger pass ten days ago (its
    invoice still open)."""
    passes = [
        do_create_pass_type(
            actor=owner, name=name, credits=credits, price_minor=price, validity_days=days
        )
        for name, credits, price, days in (
            ("Five walks", 5, 11000, 60),
            ("Ten walks", 10, 20000, 90),
        )
    ]
    bought = timezone.now() - dt.timedelta(days=10)
    return do_sell_pass(client, passes[1], actor=owner, starts_at=bought)


def start_demo_membership(owner: Actor, client: Client) -> None:
    """A monthly plan on sale, and a client on it since twelve days ago, the month paid by bank
    transfer: her completed visits take the month's credits."""
    plan = do_create_plan(
        actor=owner, name="Daily walker", monthly_price_minor=38000, credits_per_month=20
    )
    started = timezone.now() - dt.timedelta(days=12)
    _membership, invoice = do_start_membership(client, plan, actor=owner, starts_at=started)
    do_record_payment(
        invoice,
        actor=owner,
        amount_minor=plan.monthly_price_minor,
        method=PaymentType.OTHER,
        reference="Bank transfer",
    )


def settle_demo_invoices(owner: Actor, sold: tuple[ClientPass, Invoice], other: Client) -> None:
    """The pass's invoice paid in cash; another client's completed visits invoiced, open."""
    _pass, invoice = sold
    do_record_payment(
        invoice, actor=owner, amount_minor=20000, method=PaymentType.CASH, reference="Till"
    )
    draft = do_create_invoice(other, actor=owner)
    do_add_invoice_line(
        draft, actor=owner, description="Spare key cut", quantity=1, unit_price_minor=800
    )
    do_issue_invoice(draft, actor=owner)


def demo_owner() -> Actor | None:
    """The demo business's owner at the console, if the business exists."""
    owner = User.objects.filter(email__iexact=PEOPLE[0][1]).first()
    if owner is None:
        return None
    with transaction.atomic():
        set_db_context(user_id=owner.pk)
        membership = (
            Membership.objects.select_related("tenant")
            .filter(user=owner, tenant__slug=DEMO_SLUG, role=Role.OWNER)
            .first()
        )
    return None if membership is None else console_actor(owner, membership)


def fill_hosted_form(form_url: str, number: str, security_code: str, holder: str) -> str:
    """Fill in the vault's hosted card form as a browser would (GET, then POST with its CSRF
    token and cookie); the one-time reference it sends the browser back with."""
    context = ssl.create_default_context(cafile=settings.VAULT_CA_FILE or None)
    http = urllib3.PoolManager(ssl_context=context, retries=False, timeout=30)
    page = http.request("GET", form_url, redirect=False)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.data.decode())
    if page.status != 200 or token is None:
        raise CommandError("The card vault's form did not open.")
    expiry = f"12/{(timezone.now().year + 4) % 100:02d}"
    answer = http.request(
        "POST",
        form_url,
        fields={
            "csrfmiddlewaretoken": token.group(1),
            "number": number,
            "expiry": expiry,
            "security_code": security_code,
            "holder_name": holder,
        },
        encode_multipart=False,
        headers={
            "Cookie": page.headers["Set-Cookie"].split(";", 1)[0],
            "Origin": settings.VAULT_URL,
            "Referer": form_url,
        },
        redirect=False,
    )
    location = answer.headers.get("Location", "")
    ref = parse_qs(urlsplit(location).query).get("ref", [""])[0]
    if answer.status != 303 or not ref:
        raise CommandError("The card vault refused the demo card.")
    return ref


def seed_cards(owner: Actor) -> bool:
    """The portal client's sandbox Visa, added through the vault's hosted form; a card invoice
    (a five-walk pass) paid with it and partly refunded. False when the vault is not running."""
    with transaction.atomic(), acting_as(owner):
        client = Client.objects.get(tenant_id=owner.tenant_id, portal_membership__role=Role.CLIENT)
        if PaymentMethod.objects.filter(tenant_id=owner.tenant_id).exists():
            return True
        try:
            form = do_start_card_form(
                client, actor=owner, return_url=settings.PUBLIC_URL + "/app/cards/added/demo/"
            )
        except ValidationError:
            return False
    ref = fill_hosted_form(form.form_url, DEMO_CARD, "123", CLIENTS[PORTAL_CLIENT].name)
    with transaction.atomic(), acting_as(owner):
        card, _new = do_add_card(client, ref, actor=owner)
        five = PassType.objects.get(tenant_id=owner.tenant_id, name="Five walks")
        _pass, invoice = do_sell_pass(client, five, actor=owner)
        payment = do_charge_invoice(invoice, card, actor=owner)
    # The charge was sent when that committed; sent again (the same key: charged once) when a
    # caller's transaction still holds it back (a test's).
    with transaction.atomic(), acting_as(owner):
        payment.refresh_from_db()
        if payment.status == PaymentStatus.PENDING:
            send_charge(payment, actor=owner)
        if payment.status != PaymentStatus.SUCCEEDED:
            return True
        refund = do_refund_payment(payment, 2200, actor=owner)
    with transaction.atomic(), acting_as(owner):
        refund.refresh_from_db()
        if refund.status == RefundStatus.PENDING:
            send_refund(refund, actor=owner)
    return True


def reset_passwords() -> list[tuple[str, str, str]]:
    """New passwords for the demo logins, when the business exists but the file was lost."""
    rows: list[tuple[str, str, str]] = []
    portal = CLIENTS[PORTAL_CLIENT]
    logins = [
        *((email, name, role.value) for role, email, name in PEOPLE),
        (portal.email, portal.name, Role.CLIENT.value),
    ]
    with transaction.atomic():
        for email, full_name, role in logins:
            password = secrets.token_urlsafe(12)
            demo_user(email, full_name, password)
            rows.append((email, password, role))
        write_credentials(credentials_path(), rows)
    return rows


class Command(BaseCommand):
    help = f"Seed the demo business “{DEMO_NAME}” once; afterwards, show its logins again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="give the demo logins new passwords (the old ones stop working)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("The demo business is for trying Custodia out, not for production.")
        path = credentials_path()
        if not demo_business_exists():
            seed()
            self.stdout.write(f"Seeded the demo business “{DEMO_NAME}”.")
        elif options["reset_passwords"] or not path.exists():
            reset_passwords()
            self.stdout.write("The demo business exists; its logins have new passwords.")
        else:
            self.stdout.write("The demo business exists already.")
        self.stdout.write("")
        self.stdout.write(path.read_text().rstrip("\n"))
        self.stdout.write("")
        self.stdout.write(f"(kept in {path}, readable only by you)")
        # The card part needs the vault running (`custodia serve` starts it); added once.
        owner = demo_owner()
        if owner is not None and not seed_cards(owner):
            self.stdout.write(
                "The card vault is not running, so the demo card is not added yet: start "
                "`custodia serve` and run `custodia demo` again."
            )
