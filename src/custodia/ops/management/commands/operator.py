"""`custodia operator`: platform operators are made, listed and disabled here, and only here."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from custodia.platform.access import operators_for_console
from custodia.platform.actions import OperatorError, do_create_operator, do_disable_operator


class Command(BaseCommand):
    help = "Platform operators: create (mails a set-password link), list, disable."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        create = commands.add_parser(
            "create", help="make an operator and mail them a link to set their password"
        )
        create.add_argument("--email", required=True, help="the operator's login email")
        create.add_argument("--name", required=True, help="the operator's name")
        commands.add_parser("list", help="every operator, with their state")
        disable = commands.add_parser("disable", help="disable an operator, ending their sessions")
        disable.add_argument("--email", required=True, help="the operator's login email")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["command"])(options)
        except OperatorError as exc:
            raise CommandError(str(exc)) from None

    def _create(self, options: dict[str, Any]) -> None:
        operator = do_create_operator(options["email"], options["name"])
        self.stdout.write(
            f"Operator {operator.user.email} created; a link to set their password was mailed"
            " to that address. They must set up an authenticator app or a passkey at their"
            " first sign-in."
        )

    def _list(self, options: dict[str, Any]) -> None:
        with transaction.atomic():
            operators = operators_for_console()
        if not operators:
            self.stdout.write("No operators.")
        for operator in operators:
            state = (
                f"disabled {operator.disabled_at:%Y-%m-%d %H:%M} UTC"
                if operator.disabled_at is not None
                else "active"
            )
            self.stdout.write(
                f"{operator.user.email}  {operator.user.full_name}  "
                f"created {operator.created_at:%Y-%m-%d}  {state}"
            )

    def _disable(self, options: dict[str, Any]) -> None:
        ended = do_disable_operator(options["email"])
        self.stdout.write(
            f"Operator {options['email'].strip()} disabled; {ended} session(s) ended."
        )
