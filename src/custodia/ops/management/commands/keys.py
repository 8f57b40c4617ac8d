"""`custodia keys`: status, rotate-kek, rotate-business SLUG, rotate-all (docs/keys.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from custodia.crypto import actions, keyring, keystore, rows
from custodia.crypto.access import key_status
from custodia.crypto.errors import CryptoError, KekError, RotationInProgress
from custodia.crypto.kek import add_file_kek, prune_file_keks
from custodia.ops.maintenance import run_round
from custodia.tenancy.access import business_id_by_slug

logger = logging.getLogger(__name__)


def business_by_slug(slug: str) -> uuid.UUID:
    business = business_id_by_slug(slug, rows.USING)
    if business is None:
        raise CommandError(f"No business with the slug {slug!r}.")
    return business


class Command(BaseCommand):
    help = "Encryption keys: status, rotate-kek, rotate-business SLUG, rotate-all, maintain."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        status = commands.add_parser(
            "status", help="key versions, states, ages and how many values each one seals"
        )
        status.add_argument("--business", help="only this business (slug)")
        commands.add_parser(
            "rotate-kek",
            help="re-wrap every data key under the current key-encryption key (file provider: "
            "a new one is made first)",
        )
        rotate = commands.add_parser(
            "rotate-business",
            help="new data key for one business; re-encrypt its values online (resumable)",
        )
        rotate.add_argument("slug")
        maintain = commands.add_parser(
            "maintain",
            help="rotate-all (one round; the job worker runs it at start and daily)",
        )
        # Accepted for the scripts of the days when `maintain` looped: a round is all it does.
        maintain.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
        commands.add_parser(
            "rotate-all",
            help="rotate every data key older than CUSTODIA_KEY_ROTATION_DAYS, finish "
            "interrupted rotations, destroy retired keys past their retention and the key "
            "files of deleted businesses",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["command"].replace("-", "_"))(options)
        except (KekError, CryptoError, RotationInProgress) as exc:
            raise CommandError(str(exc)) from None

    def _status(self, options: dict[str, Any]) -> None:
        only = business_by_slug(options["business"]) if options["business"] else None
        kek = keyring.provider()
        self.stdout.write(
            f"key-encryption key: {kek.primary_id} ({kek.name}); keystore {keystore.keystore_dir()}"
        )
        now = dt.datetime.now(dt.UTC)
        rotate_after = dt.timedelta(days=settings.KEY_ROTATION_DAYS)
        problems = 0
        for status in key_status():
            if only is not None and status.business_id != only:
                continue
            name = status.slug or f"(no business: orphan key file {status.business_id})"
            if not status.versions:
                self.stdout.write(f"{name}: NO KEYS (its encrypted values cannot be read)")
                problems += 1
                continue
            notes = []
            if any(version.state == keystore.PREVIOUS for version in status.versions):
                notes.append("rotation unfinished: run rotate-business")
            if now - status.primary.created_at > rotate_after:
                notes.append("due for rotation")
            stale = [v.version for v in status.versions if v.state != "primary" and v.values]
            if stale and not any(v.state == keystore.PREVIOUS for v in status.versions):
                notes.append(
                    f"values under retired versions {stale}: run rotate-business (or wait for "
                    "maintenance)"
                )
            if status.unknown_versions:
                notes.append(f"values under unknown versions {status.unknown_versions}")
                problems += 1
            self.stdout.write(f"{name}{': ' + '; '.join(notes) if notes else ''}")
            for version in status.versions:
                age = (now - version.created_at).days
                self.stdout.write(
                    f"  v{version.version:<4} {version.state:<8} kek {version.kek:<16} "
                    f"age {age:>4} d  {version.values:>9} values"
                )
        if problems:
            raise CommandError(f"{problems} business(es) with key problems (above).")

    def _rotate_kek(self, options: dict[str, Any]) -> None:
        pending = keystore.keks_in_use() - {keyring.provider().primary_id}
        if settings.KEK_PROVIDER == "file" and not pending:
            new = add_file_kek()
            self.stdout.write(f"new key-encryption key {new} added to {settings.KEK_KEYRING_FILE}")
        elif pending:
            self.stdout.write(f"re-wrapping keys still under {', '.join(sorted(pending))}")
        count = actions.do_rotate_kek(progress=self.stdout.write)
        self.stdout.write(f"{count} keys re-wrapped under {keyring.provider().primary_id}")
        if settings.KEK_PROVIDER == "file":
            self._prune_keks()
            self.stdout.write(
                "the retired key-encryption key stays in the keyring for a day (for servers "
                "still reading with it), then `custodia keys maintain` removes it"
            )
        elif settings.KEK_PROVIDER == "env":
            self.stdout.write("every key is under CUSTODIA_KEK: remove CUSTODIA_KEK_PREVIOUS.")

    def _prune_keks(self) -> None:
        dropped = prune_file_keks()
        if dropped:
            self.stdout.write(f"retired key-encryption keys removed: {', '.join(dropped)}")

    def _rotate_business(self, options: dict[str, Any]) -> None:
        business = business_by_slug(options["slug"])
        result = actions.do_rotate_business_key(business, progress=self.stdout.write)
        rate = result.rows / result.seconds if result.seconds else 0.0
        verb = "finished the interrupted rotation to" if result.resumed else "rotated to"
        self.stdout.write(
            f"{options['slug']}: {verb} v{result.version}; {result.rows} rows re-encrypted in "
            f"{result.seconds:.1f} s ({rate:.0f} rows/s); retired "
            f"{', '.join(f'v{v}' for v in result.retired) or 'none'}"
        )

    def _maintain(self, options: dict[str, Any]) -> None:
        def rotate_all() -> None:
            try:
                self._rotate_all(options)
            except (KekError, CryptoError, RotationInProgress) as exc:
                raise CommandError(str(exc)) from None

        run_round("key maintenance", [rotate_all], logger=logger)

    def _rotate_all(self, options: dict[str, Any]) -> None:
        due = actions.businesses_due()
        for business in due:
            result = actions.do_rotate_business_key(business)
            self.stdout.write(f"{business}: v{result.version}, {result.rows} rows re-encrypted")
        if settings.KEK_PROVIDER == "file":
            self._prune_keks()
        for business in actions.do_destroy_orphan_keys():
            self.stdout.write(f"{business}: orphan key file destroyed (no such business)")
        destroyed = actions.do_destroy_expired_keys()
        for business, versions in destroyed.items():
            self.stdout.write(f"{business}: retired versions {versions} destroyed")
        self.stdout.write(
            f"{len(due)} business(es) rotated; {len(destroyed)} with retired keys destroyed"
        )
