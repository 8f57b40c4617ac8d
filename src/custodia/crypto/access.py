"""Reads about keys: what `custodia keys status` shows (never key material)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.db import connections, transaction
from psycopg import sql

from custodia.crypto import keystore, rows
from custodia.crypto.errors import KeyUnavailable
from custodia.crypto.rows import enter_business, sealed_tables
from custodia.tenancy.access import business_slugs


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str
    kek: str
    created_at: dt.datetime
    retired_at: dt.datetime | None
    values: int  # stored values sealed under this version


@dataclass(frozen=True)
class BusinessKeyStatus:
    business_id: uuid.UUID
    slug: str  # "" for an orphan key file (no such business in the database)
    versions: list[VersionStatus] = field(default_factory=list)
    unknown_versions: dict[int, int] = field(default_factory=dict)  # version: values

    @property
    def primary(self) -> VersionStatus:
        return next(version for version in self.versions if version.state == keystore.PRIMARY)


def key_status() -> list[BusinessKeyStatus]:
    """Every key file with its versions, their ages and how many values each one seals."""
    slugs = business_slugs(rows.USING)
    statuses = []
    for business in sorted(set(keystore.business_ids()) | set(slugs)):
        try:
            key_file = keystore.read(business)
        except KeyUnavailable:  # a business without keys is reported, not fatal
            key_file = None
        counts = values_per_version(business) if business in slugs else {}
        versions = []
        for key in key_file.keys if key_file else []:
            versions.append(
                VersionStatus(
                    version=key.version,
                    state=key.state,
                    kek=key.kek,
                    created_at=dt.datetime.fromisoformat(key.created_at),
                    retired_at=dt.datetime.fromisoformat(key.retired_at)
                    if key.retired_at
                    else None,
                    values=counts.pop(key.version, 0),
                )
            )
        statuses.append(BusinessKeyStatus(business, slugs.get(business, ""), versions, counts))
    return statuses


def values_per_version(business_id: uuid.UUID) -> dict[int, int]:
    """How many stored values of the business name each key version (0: not encrypted)."""
    counts: dict[int, int] = {}
    with transaction.atomic(using=rows.USING), connections[rows.USING].cursor() as cursor:
        enter_business(cursor, business_id)
        for table in sealed_tables():
            selects = sql.SQL(" UNION ALL ").join(
                sql.SQL(
                    "SELECT CASE WHEN get_byte({column}, 0) = 1"
                    " THEN ('x' || encode(substring({column} FROM 2 FOR 4), 'hex'))::bit(32)::int"
                    " ELSE 0 END AS version FROM {table} WHERE tenant_id = %s"
                    " AND octet_length({column}) > 0"
                ).format(column=sql.Identifier(column), table=sql.Identifier(table.table))
                for column in table.columns
            )
            query = sql.SQL("SELECT version, count(*) FROM ({}) AS v GROUP BY version").format(
                selects
            )
            cursor.execute(
                query.as_string(cursor.connection), [str(business_id)] * len(table.columns)
            )
            for version, count in cursor.fetchall():
                counts[version] = counts.get(version, 0) + count
    return counts
