"""The `custodia` command: Django management with Custodia's settings, plus operator commands."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Run a management command; `migrate` defaults to the owner connection."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "custodia.settings")
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in {"migrate", "createcachetable", "showmigrations"} and not any(
        arg.startswith("--database") for arg in args
    ):
        args.append("--database=owner")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["custodia", *args])


if __name__ == "__main__":
    main()
