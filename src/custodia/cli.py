"""The `custodia` command: Django management with Custodia's settings, plus operator commands."""

from __future__ import annotations

import os
import sys

# Shown first by `custodia --help`; descriptions for Django's own commands say what they do here.
CUSTODIA_COMMANDS: dict[str, str | None] = {
    "setup": None,
    "serve": None,
    "worker": None,
    "demo": None,
    "createbusiness": None,
    "token": None,
    "operator": None,
    "audit": None,
    "keys": None,
    "backup": None,
    "closing": None,
    "export": None,
    "clients": None,
    "retention": None,
    "vault": "The card vault's own commands: `custodia vault setup`, `custodia vault serve`.",
    "migrate": "Apply database migrations, as the owner role custodia_owner.",
    "dbshell": "psql as the app role custodia_app (row-level security applies).",
    "check": "System checks; `check --deploy` with CUSTODIA_ENV=production before going live.",
}
HELP_WORDS = {"help", "--help", "-h"}
# Commands that never open a database connection, so the embedded server need not start.
NO_DATABASE = HELP_WORDS | {"version", "--version", "check", "collectstatic", "setup", "serve"}
# Nor may upgrade-embedded: it upgrades a data directory the embedded server refuses to open.
NO_DATABASE |= {"upgrade_embedded"}
OWNER_COMMANDS = {"migrate", "showmigrations"}
# Commands spelt with a hyphen on the command line (a Django command module cannot be).
HYPHENATED = {"bench-data": "bench_data", "upgrade-embedded": "upgrade_embedded"}


# `custodia vault <command>`: the vault's commands, under the vault's own settings.
VAULT_SETTINGS = "custodia.vault.settings"
VAULT_SELF_STARTING = {"setup", "serve"}  # they start the embedded server themselves


def main(argv: list[str] | None = None) -> None:
    """Run a management command; `migrate` defaults to the owner connection."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "vault":
        main_vault(args[1:])
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "custodia.settings")
    # The command's name, or the name after `help`, may be a hyphenated one.
    for position in (0, 1) if args and args[0] in HELP_WORDS else (0,):
        if len(args) > position and args[position] in HYPHENATED:
            args[position] = HYPHENATED[args[position]]
    if args and args[0] in OWNER_COMMANDS and not any(arg.startswith("--database") for arg in args):
        args.append("--database=owner")

    from django.core.exceptions import ImproperlyConfigured

    try:
        import django

        django.setup()
    except ImproperlyConfigured as exc:
        # A configuration problem is the operator's to fix: say what, without a traceback.
        sys.stderr.write(f"custodia: configuration error: {exc}\n")
        raise SystemExit(2) from None

    if not args or (len(args) == 1 and args[0] in HELP_WORDS):
        print_help()
        return
    if args[0] not in NO_DATABASE:
        start_embedded_database()
    if args[0] == "dbshell":
        expose_embedded_psql()

    from django.core.management import execute_from_command_line

    execute_from_command_line(["custodia", *args])


def main_vault(args: list[str]) -> None:
    """`custodia vault ARGS`: a management command of the vault process, with its settings (the
    app's apps and settings are never loaded)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = VAULT_SETTINGS
    from django.core.exceptions import ImproperlyConfigured

    try:
        import django

        django.setup()
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"custodia vault: configuration error: {exc}\n")
        raise SystemExit(2) from None
    if not args or (len(args) == 1 and args[0] in HELP_WORDS):
        sys.stdout.write(
            "usage: custodia vault <command> [options]\n\n"
            "  setup   make the vault's key, role, database and tables (safe to run again)\n"
            "  serve   serve the vault over HTTPS (port CUSTODIA_VAULT_PORT, default 8444)\n"
        )
        return
    if args[0] not in VAULT_SELF_STARTING | HELP_WORDS:
        start_embedded_database()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["custodia vault", *args])


def print_help() -> None:
    """Custodia's own commands first, then where to find the rest."""
    from django.core.management import get_commands, load_command_class

    available = get_commands()
    width = max(len(name) for name in CUSTODIA_COMMANDS) + 2
    lines = ["usage: custodia <command> [options]", "", "Custodia commands:"]
    for name, description in CUSTODIA_COMMANDS.items():
        if description is None:
            if name not in available:
                continue
            description = str(load_command_class(available[name], name).help)
        lines.append(f"  {name.ljust(width)}{description}")
    lines += [
        "",
        "`custodia help <command>` shows a command's options;",
        "`custodia help --commands` lists every command, Django's own included.",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


def start_embedded_database() -> None:
    """With the embedded server, make sure it runs and point every connection at its socket."""
    from django.conf import settings

    if not settings.EMBEDDED_DATABASE:
        return
    from custodia import embedded

    try:
        socket_dir = str(embedded.start_embedded(settings.EMBEDDED_PGDATA))
    except embedded.DatabaseServerError as exc:
        sys.stderr.write(f"custodia: {exc}\n")
        raise SystemExit(2) from None
    settings.ADMIN_DATABASE["HOST"] = socket_dir
    for database in settings.DATABASES.values():
        database["HOST"] = socket_dir


def expose_embedded_psql() -> None:
    """With the embedded server, its own psql comes first: the machine's may be older."""
    from django.conf import settings

    if not settings.EMBEDDED_DATABASE:
        return
    from custodia.embedded import postgres_bin_dir

    os.environ["PATH"] = f"{postgres_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"


if __name__ == "__main__":
    main()
