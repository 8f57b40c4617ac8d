"""The `custodia` command: help, database roles per command, createbusiness, token, demo, serve."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from custodia import cli
from custodia.accounts.models import User
from custodia.clients.access import list_clients
from custodia.core.actor import Actor
from custodia.core.dbcontext import set_db_context
from custodia.core.permissions import Permission, Role
from custodia.embedded import postgres_bin_dir
from custodia.ops.management.commands import demo
from custodia.payments import access as payments_access
from custodia.payments.models import ClientMembership, ClientPass, Invoice, Payment
from custodia.scheduling.access import list_services, list_visits
from custodia.tenancy.access import memberships_of
from tests.acting import act, resolve_token
from tests.factories import PASSWORD, UserFactory, add_member

STRONG = "a long and unusual pass phrase 93"
# The bearer lookup the API uses (tenancy/actors.py), acting in the test's scope.
actor_for_token = resolve_token


def run(*args: str) -> list[str]:
    """Run a management command in-process; its output lines."""
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def actor_of(email: str) -> Actor:
    """The actor of a login with exactly one membership."""
    user = User.objects.get(email=email)
    set_db_context(user_id=user.pk)
    memberships = list(memberships_of(user))
    assert len(memberships) == 1
    actor = Actor(user, memberships[0])
    act(actor)
    return actor


# --- the command itself ---------------------------------------------------------------------


def test_help_lists_the_custodia_commands(capsys):
    cli.main(["--help"])
    output = capsys.readouterr().out
    # Every command of the README's table, as the README says `custodia --help` lists them.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    documented = set(re.findall(r"^\| `custodia ([a-z][a-z-]*)", readme, re.MULTILINE))
    assert {"setup", "serve", "keys", "audit", "token", "migrate", "dbshell"} <= documented
    for name in documented:
        assert f"\n  {name} " in output, name


@pytest.mark.parametrize("command", ["bench-data", "keys", "audit"])
def test_help_shows_a_commands_options(capsys, command):
    cli.main(["help", command])
    output = capsys.readouterr().out
    assert output.startswith("usage: custodia "), output


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv main() would hand to Django, without running anything."""
    calls: list[list[str]] = []
    monkeypatch.setattr(cli, "start_embedded_database", lambda: None)
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))  # dbshell may prepend to it
    monkeypatch.setattr(
        "django.core.management.execute_from_command_line", lambda argv: calls.append(argv)
    )
    return calls


def test_migrate_runs_as_the_owner_role(captured):
    cli.main(["migrate"])
    cli.main(["migrate", "--database=default"])
    assert captured == [
        ["custodia", "migrate", "--database=owner"],
        ["custodia", "migrate", "--database=default"],
    ]


def test_dbshell_runs_as_the_app_role(captured):
    cli.main(["dbshell"])
    assert captured == [["custodia", "dbshell"]]
    # No --database: Django's default connection, which logs in as custodia_app.
    assert connections["default"].settings_dict["USER"] == "custodia_app"
    assert connections["owner"].settings_dict["OPTIONS"]["options"] == "-c role=custodia_owner"
    if settings.EMBEDDED_DATABASE:
        # The embedded server's own psql, not an older one the machine may have.
        first = os.environ["PATH"].split(os.pathsep)[0]
        assert first == str(postgres_bin_dir()) and Path(first, "psql").is_file()


def test_configuration_errors_are_reported_without_a_traceback(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "CUSTODIA_VAR_DIR": str(tmp_path),
        "CUSTODIA_ENV": "production",
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "custodia.cli", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "custodia: configuration error: CUSTODIA_SECRET_KEY (or CUSTODIA_SECRET_KEY_FILE) "
        "must be set.\n"
    )


# --- createbusiness -------------------------------------------------------------------------


def password_file(tmp_path: Path, password: str) -> str:
    path = tmp_path / "password"
    path.write_text(password + "\n")
    return str(path)


def test_createbusiness_creates_a_verified_owner_and_prints_the_slug(db, tmp_path):
    lines = run(
        "createbusiness",
        "--name",
        "Shiny Windows",
        "--owner-email",
        "Ann@Example.com",
        "--password-file",
        password_file(tmp_path, STRONG),
    )
    user = User.objects.get(email="ann@example.com")
    assert user.check_password(STRONG)
    assert EmailAddress.objects.get(user=user).verified
    owner = actor_of("ann@example.com")
    assert owner.role == Role.OWNER
    assert owner.business.name == "Shiny Windows"
    assert lines[-1] == owner.business.slug
    assert STRONG not in "\n".join(lines)


def test_createbusiness_without_password_file_prints_a_random_password_once(db):
    lines = run("createbusiness", "--name", "Tidy Homes", "--owner-email", "tidy@example.com")
    password = next(line for line in lines if "shown once" in line).rsplit(" ", 1)[1]
    assert User.objects.get(email="tidy@example.com").check_password(password)


def test_createbusiness_makes_an_existing_login_owner_of_another_business(db, matrix):
    user = matrix.a.staff.user
    run("createbusiness", "--name", "Side Gig", "--owner-email", user.email)
    set_db_context(user_id=user.pk)
    assert {m.tenant.name for m in memberships_of(user)} == {"Alpha", "Side Gig"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--owner-email", "not-an-email"], "--owner-email: enter a valid email address."),
        (["--owner-email", "new@example.com", "--name", "  "], "--name: give the business a name."),
    ],
)
def test_createbusiness_refuses_bad_input(db, args, message):
    options = {"--name": "Biz", **dict(zip(args[::2], args[1::2], strict=True))}
    with pytest.raises(CommandError) as error:
        run("createbusiness", *[part for pair in options.items() for part in pair])
    assert str(error.value) == message
    assert not User.objects.filter(email="new@example.com").exists()


def test_createbusiness_refuses_a_weak_password_and_writes_nothing(db, tmp_path):
    weak = "password1234"
    with pytest.raises(CommandError) as error:
        run(
            "createbusiness",
            "--name",
            "Weak",
            "--owner-email",
            "weak@example.com",
            "--password-file",
            password_file(tmp_path, weak),
        )
    assert "too common" in str(error.value)
    assert weak not in str(error.value)
    assert not User.objects.filter(email="weak@example.com").exists()


def test_createbusiness_names_an_unreadable_password_file(db, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(CommandError) as error:
        run(
            "createbusiness",
            "--name",
            "X",
            "--owner-email",
            "x@example.com",
            "--password-file",
            str(missing),
        )
    assert str(error.value) == (
        f"--password-file {missing}: cannot be read (No such file or directory)."
    )
    assert not User.objects.filter(email="x@example.com").exists()


def test_createbusiness_refuses_an_existing_login_with_another_password(db, matrix, tmp_path):
    user = matrix.a.manager.user
    with pytest.raises(CommandError) as error:
        run(
            "createbusiness",
            "--name",
            "Takeover",
            "--owner-email",
            user.email,
            "--password-file",
            password_file(tmp_path, STRONG),
        )
    assert "does not hold its password" in str(error.value)
    set_db_context(user_id=user.pk)
    assert [m.tenant.name for m in memberships_of(user)] == ["Alpha"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


# --- token ----------------------------------------------------------------------------------


def test_token_create_prints_a_working_token_last(db, matrix):
    email = matrix.a.staff.user.email
    lines = run(
        "token",
        "create",
        "--email",
        email,
        "--scopes",
        "clients:record:read",
        "--days",
        "7",
        "--name",
        "sync",
    )
    actor = actor_for_token(lines[-1])
    assert actor is not None
    assert actor.membership.pk == matrix.a.staff.membership.pk
    assert actor.scopes == frozenset({Permission.CLIENTS_RECORD_READ})
    act(actor)
    assert [c.name for c in list_clients(actor)] == ["Alpha Client"]


def test_token_create_needs_business_when_the_person_has_several(db, matrix):
    user = matrix.a.manager.user
    add_member(matrix.b.owner, user, Role.STAFF)
    with pytest.raises(CommandError) as error:
        run("token", "create", "--email", user.email)
    assert "choose one with --business" in str(error.value)
    slug = matrix.b.owner.business.slug
    assert slug in str(error.value)
    actor = actor_for_token(run("token", "create", "--email", user.email, "--business", slug)[-1])
    assert actor is not None and actor.tenant_id == matrix.b.owner.tenant_id


@pytest.mark.parametrize(
    ("who", "extra", "message"),
    [
        ("client_login", [], "cannot create API tokens"),
        ("staff", ["--scopes", "clients:record:write"], "Your role cannot grant"),
        ("staff", ["--scopes", "everything"], "Unknown scopes: everything"),
        ("staff", ["--days", "400"], "between 1 and 365 days"),
        ("staff", ["--business", "bravo-nope"], "is not an active member of 'bravo-nope'"),
    ],
)
def test_token_create_refuses_what_role_or_input_do_not_allow(db, matrix, who, extra, message):
    email = getattr(matrix.a, who).user.email
    with pytest.raises(CommandError) as error:
        run("token", "create", "--email", email, *extra)
    assert message in str(error.value)


def test_token_create_for_an_unknown_email_fails(db):
    with pytest.raises(CommandError, match="No active login has the email"):
        run("token", "create", "--email", "ghost@example.com")


def test_token_list_and_revoke(db, matrix):
    email = matrix.a.owner.user.email
    plain = run("token", "create", "--email", email, "--name", "backup job")[-1]
    prefix = plain.split("_")[1]
    listing = "\n".join(run("token", "list", "--email", email))
    assert prefix in listing and "active" in listing and "backup job" in listing
    assert plain.split("_", 2)[2] not in listing  # the secret is never listed
    assert run("token", "revoke", "--email", email, "--prefix", prefix)[-1].startswith("Revoked")
    assert actor_for_token(plain) is None
    assert "revoked" in "\n".join(run("token", "list", "--email", email))


def test_token_revoke_cannot_reach_someone_elses_token(db, matrix):
    plain = run("token", "create", "--email", matrix.a.owner.user.email)[-1]
    prefix = plain.split("_")[1]
    with pytest.raises(CommandError, match="has no token with the prefix"):
        run("token", "revoke", "--email", matrix.a.manager.user.email, "--prefix", prefix)
    assert actor_for_token(plain) is not None


# --- demo -----------------------------------------------------------------------------------


@pytest.fixture
def demo_var(settings: Any, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path
    return tmp_path / demo.CREDENTIALS_FILE


def logins_in(lines: list[str]) -> dict[str, tuple[str, str]]:
    """email -> (password, role) from the printed table."""
    rows = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0].endswith("@example.com"):
            rows[parts[0]] = (parts[1], parts[2])
    return rows


def test_demo_seeds_one_business_once(db, demo_var):
    started = timezone.now()
    logins = logins_in(run("demo"))
    assert sorted(role for _password, role in logins.values()) == [
        "client",
        "manager",
        "owner",
        "staff",
        "staff",
    ]
    for email, (password, _role) in logins.items():
        user = User.objects.get(email=email)
        assert user.check_password(password)
        assert EmailAddress.objects.get(user=user).verified
    assert demo_var.stat().st_mode & 0o777 == 0o600

    owner = actor_of("olivia.park@example.com")
    assert owner.business.slug == "demo" and owner.business.name == "Paws & Claws Pet Sitting"
    assert len(list_clients(owner)) == 12
    assert len(list_services(owner)) == 3
    everything = list(list_visits(owner))
    # A week of single visits around today, and one repeating series from next Monday.
    visits = [v for v in everything if v.series_id is None]
    series = [v for v in everything if v.series_id is not None]
    today = timezone.localdate()
    first, last = today - dt.timedelta(days=3), today + dt.timedelta(days=3)
    assert all(first <= timezone.localtime(v.starts_at).date() <= last for v in visits)
    assert len(series) == 12 and len({v.series_id for v in series}) == 1
    assert {timezone.localtime(v.starts_at).weekday() for v in series} == {0, 2, 4}
    assert {v.client.name for v in series} == {"Hannah Lee"} and min(
        timezone.localtime(v.starts_at).date() for v in series
    ) > today
    completed = [v for v in visits if v.status == "completed"]
    scheduled = [v for v in visits if v.status == "scheduled"]
    assert completed and scheduled
    assert all(v.report and v.ends_at <= started + dt.timedelta(minutes=1) for v in completed)
    assert all(v.ends_at > started for v in scheduled)
    assert [v.client.name for v in visits if v.status == "requested"] == ["Hannah Lee"]

    # Money: two passes and a plan on sale; Hannah's pass took credits for her completed visits;
    # its invoice is paid in cash, and another client's visits are invoiced, open. Aisha is on
    # the monthly plan, paid by transfer: her completed visits took the month's credits.
    assert len(payments_access.list_pass_types(owner)) == 2
    assert len(payments_access.list_plans(owner)) == 1
    [hannah_pass] = ClientPass.objects.filter(client__name="Hannah Lee")
    hannah_completed = [v for v in completed if v.client.name == "Hannah Lee"]
    assert hannah_pass.credits_left == 10 - len(hannah_completed) < 10
    [aisha] = ClientMembership.objects.filter(client__name="Aisha Rahman")
    aisha_completed = [v for v in completed if v.client.name == "Aisha Rahman"]
    assert aisha.status == "active"
    assert aisha.credits_this_period == 20 - len(aisha_completed) < 20
    statuses = sorted(Invoice.objects.values_list("status", flat=True))
    assert statuses == ["open", "paid", "paid"]
    assert sorted(Payment.objects.values_list("method", flat=True)) == ["cash", "other"]

    # The seeded roles see what their role allows, through the same RLS as everyone else.
    staff = actor_of("priya.shah@example.com")
    assert len(list_clients(staff)) == 6
    client = actor_of("hannah.lee@example.com")
    assert [c.name for c in list_clients(client)] == ["Hannah Lee"]

    # Running it again changes nothing and shows the same logins.
    users_before = User.objects.count()
    again = run("demo")
    assert "exists already" in again[0]
    assert logins_in(again) == logins
    assert User.objects.count() == users_before


def test_demo_gives_new_passwords_when_the_file_is_lost(db, demo_var):
    first = logins_in(run("demo"))
    demo_var.unlink()
    second = logins_in(run("demo"))
    assert set(second) == set(first)
    owner = User.objects.get(email="olivia.park@example.com")
    assert owner.check_password(second[owner.email][0])
    assert not owner.check_password(first[owner.email][0])
    assert demo_var.stat().st_mode & 0o777 == 0o600


def test_demo_refuses_to_run_in_production(db, demo_var, settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="not for production"):
        run("demo")
    assert not demo_var.exists()
    assert not User.objects.filter(email="olivia.park@example.com").exists()


def test_demo_accounts_do_not_collide_with_factory_users(db):
    # Factories use @example.test; the demo's addresses are its own.
    assert not UserFactory().email.endswith("@example.com")


# --- serve ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0"], "--port must be between 1 and 65535."),
        (["--port", "9000", "--http-port", "9000"], "--http-port must differ from --port."),
        (["--workers", "0"], "--workers and --threads must be at least 1."),
        (["--certificate", "cert.pem"], "Give both --certificate and --keyfile, or neither."),
    ],
)
def test_serve_refuses_bad_options_before_doing_anything(args, message):
    with pytest.raises(CommandError) as error:
        run("serve", *args)
    assert str(error.value) == message


def test_serve_in_production_refuses_to_start_without_backup_recipients(settings):
    settings.PRODUCTION = True
    settings.BACKUP_RECIPIENTS = []
    with pytest.raises(CommandError, match="Set CUSTODIA_BACKUP_RECIPIENTS") as error:
        run("serve")
    assert "--no-backups" in str(error.value)
