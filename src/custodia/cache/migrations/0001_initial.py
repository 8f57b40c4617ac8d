"""The cache table (cache/backend.py), in place of Django's DatabaseCache table.

UNLOGGED: counters and markers, not records (a crash empties it and every limit starts afresh).
No row-level security: it holds no tenant data, and its keys are HMACs (cache/keys.py). The app
role may read, write and delete rows, nothing more (no TRUNCATE, no triggers, no references).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations

APP = settings.APP_DB_ROLE

CREATE: list[Any] = [
    """CREATE UNLOGGED TABLE custodia_cache_entry (
        key text PRIMARY KEY,
        value jsonb NOT NULL,
        expires timestamptz)""",
    f"REVOKE ALL ON custodia_cache_entry FROM PUBLIC, {APP}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON custodia_cache_entry TO {APP}",
    # Django's DatabaseCache table, made by `createcachetable` before this app existed.
    "DROP TABLE IF EXISTS custodia_cache",
]
DROP: list[Any] = ["DROP TABLE custodia_cache_entry"]


class Migration(migrations.Migration):
    initial = True
    dependencies = []  # type: ignore[var-annotated]

    operations = [migrations.RunSQL(CREATE, DROP)]
