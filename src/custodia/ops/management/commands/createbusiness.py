"""`custodia createbusiness`: a new business and its owner's login, from the command line."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from custodia.accounts.models import User, normalize_email
from custodia.tenancy.actions import do_create_business


def read_password_file(path: Path) -> str:
    """The password on the file's first line; the file's contents never appear in an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"--password-file {path}: cannot be read ({exc.strerror}).") from None
    except UnicodeDecodeError:
        raise CommandError(f"--password-file {path}: is not UTF-8 text.") from None
    lines = text.splitlines()
    password = lines[0] if lines else ""
    if not password:
        raise CommandError(f"--password-file {path}: the first line is empty.")
    return password


def messages_of(error: ValidationError) -> str:
    """A ValidationError's messages as one line."""
    return " ".join(str(message) for message in error.messages)


class Command(BaseCommand):
    help = "Create a business with its owner (the login is created when the email is new)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="the business's name")
        parser.add_argument("--owner-email", required=True, help="the owner's login email")
        parser.add_argument(
            "--password-file",
            type=Path,
            help="file whose first line is the new owner's password (default: a random one, "
            "printed once); for an existing login it must hold that login's password",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        email = normalize_email(options["owner_email"])
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError("--owner-email: enter a valid email address.") from None
        name = options["name"].strip()
        if not name:
            raise CommandError("--name: give the business a name.")
        password_file = options["password_file"]
        password = read_password_file(password_file) if password_file else None

        generated = None
        with transaction.atomic():
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                if password is None:
                    password = generated = secrets.token_urlsafe(16)
                candidate = User(email=email)
                try:
                    validate_password(password, candidate)
                except ValidationError as exc:
                    raise CommandError(f"--password-file: {messages_of(exc)}") from None
                user = User.objects.create_user(email, password)
                # The operator vouches for the address; the owner can log in at once.
                EmailAddress.objects.create(
                    user=user, email=user.email, verified=True, primary=True
                )
            elif password is not None and not user.check_password(password):
                raise CommandError(
                    "A login with this email exists and the password file does not hold its "
                    "password. Leave out --password-file to make them the owner as they are."
                )
            try:
                actor = do_create_business(name=name, owner=user)
            except ValidationError as exc:
                raise CommandError(messages_of(exc)) from None

        self.stdout.write(f"Created “{actor.business.name}” owned by {user.email}.")
        if generated:
            self.stdout.write(f"Password for {user.email} (shown once, store it now): {generated}")
        self.stdout.write(f"Log in at {settings.PUBLIC_URL}/accounts/login/. The slug is:")
        self.stdout.write(actor.business.slug)
