"""`custodia token`: create, list and revoke a person's API tokens from the command line."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from custodia.accounts.access import list_tokens
from custodia.accounts.actions import do_create_api_token, do_revoke_api_token
from custodia.accounts.models import ApiToken
from custodia.core.actor import Actor, acting_as
from custodia.core.closed import BusinessClosed
from custodia.tenancy.actors import console_actors, find_user


def messages_of(error: ValidationError) -> str:
    """A ValidationError's messages as one line."""
    if hasattr(error, "message_dict"):
        return " ".join(
            f"--{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
        )
    return " ".join(str(message) for message in error.messages)


class Command(BaseCommand):
    help = "Create, list or revoke a person's API tokens (the secret is shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{create,list,revoke}"
        )
        create = actions.add_parser("create", help="create a token; its value is the last line")
        create.add_argument("--email", required=True, help="the token holder's login email")
        create.add_argument("--business", help="business slug (needed when they have several)")
        create.add_argument(
            "--scopes",
            help="comma-separated permissions, e.g. clients:record:read "
            "(default: everything the role allows)",
        )
        create.add_argument("--days", type=int, help="lifetime in days, 1 to 365")
        create.add_argument("--name", default="CLI token", help="a label for the token")
        listing = actions.add_parser("list", help="list a person's tokens")
        listing.add_argument("--email", required=True)
        listing.add_argument("--business", help="only this business (slug)")
        revoke = actions.add_parser("revoke", help="revoke a token by its public prefix")
        revoke.add_argument("--email", required=True)
        revoke.add_argument("--prefix", required=True, help="the part after cst_ in the token")

    def handle(self, *args: Any, **options: Any) -> None:
        user = find_user(options["email"])
        with transaction.atomic():
            actors = console_actors(user, options.get("business"))
            getattr(self, f"handle_{options['action']}")(actors, options)

    def handle_create(self, actors: list[Actor], options: dict[str, Any]) -> None:
        if len(actors) > 1:
            slugs = ", ".join(actor.business.slug for actor in actors)
            raise CommandError(
                f"{actors[0].user.email} belongs to several businesses; "
                f"choose one with --business ({slugs})."
            )
        actor = actors[0]
        scopes = None
        if options["scopes"]:
            scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        if options["days"] is not None and not 1 <= options["days"] <= 365:
            raise CommandError("--days: a token lasts between 1 and 365 days.")
        try:
            with acting_as(actor):
                token, plain = do_create_api_token(
                    actor=actor, name=options["name"], scopes=scopes, days=options["days"]
                )
        except ValidationError as exc:
            raise CommandError(messages_of(exc)) from None
        except BusinessClosed as exc:
            raise CommandError(f"{actor.business.slug}: {exc}") from None
        except PermissionDenied:
            raise CommandError(
                f"A {actor.role} of {actor.business.slug} cannot create API tokens."
            ) from None
        self.stdout.write(
            f"Token “{token.name}” for {actor.user.email} in {actor.business.slug}, "
            f"expires {token.expires_at:%Y-%m-%d}, scopes: {', '.join(token.scopes)}"
        )
        self.stdout.write("Shown once; store it now:")
        self.stdout.write(plain)

    def handle_list(self, actors: list[Actor], options: dict[str, Any]) -> None:
        now = timezone.now()
        rows = []
        for actor in actors:
            with acting_as(actor):
                for token in list_tokens(actor):
                    rows.append((actor.business.slug, token, _status(token, now)))
        if not rows:
            self.stdout.write("No tokens.")
            return
        self.stdout.write(f"{'business':<24}{'prefix':<14}{'status':<10}{'expires':<12}name")
        for slug, token, status in rows:
            self.stdout.write(
                f"{slug:<24}{token.prefix:<14}{status:<10}{token.expires_at:%Y-%m-%d}  {token.name}"
            )

    def handle_revoke(self, actors: list[Actor], options: dict[str, Any]) -> None:
        prefix = options["prefix"].strip()
        # Accept a whole token or its prefix; only the public prefix is ever looked at.
        if prefix.startswith("cst_"):
            prefix = prefix.split("_")[1]
        for actor in actors:
            with acting_as(actor):
                token = list_tokens(actor).filter(prefix=prefix).first()
                if token is None:
                    continue
                if token.revoked_at is not None:
                    self.stdout.write(f"Token {prefix} was already revoked.")
                    return
                do_revoke_api_token(token, actor=actor)
            self.stdout.write(f"Revoked token {prefix} ({token.name}) in {actor.business.slug}.")
            return
        raise CommandError(f"{actors[0].user.email} has no token with the prefix {prefix!r}.")


def _status(token: ApiToken, now: Any) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at <= now:
        return "expired"
    return "active"
