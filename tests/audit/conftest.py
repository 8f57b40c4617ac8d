"""Audit tests: events written and read back inside the test's transactions."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connections

from custodia.audit.chain import USING


def owner_events(tenant_id: uuid.UUID | None, *, using: str = USING) -> list[dict[str, Any]]:
    """Every event of one chain in order, read as the owner role (no RLS narrowing)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT id, lane, seq, action, outcome, actor_user_id, actor_role, target_type,"
            " target_id, client_id, subject_ids, detail FROM audit_auditevent"
            " WHERE tenant_id IS NOT DISTINCT FROM %s ORDER BY id",
            [tenant_id],
        )
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
