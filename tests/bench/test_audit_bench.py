"""bench/audit.py: the chain fill writes the intended events through the real trigger, and the
small helpers that plan runs and turn sizes into figures."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connections

from bench import audit
from custodia.audit import chain


def test_chunks_cover_every_row_once() -> None:
    assert audit.chunks(10, 3) == [(1, 3), (4, 6), (7, 9), (10, 10)]
    assert audit.chunks(6, 3) == [(1, 3), (4, 6)]
    assert audit.chunks(0, 3) == []


def test_interleaved_alternates_which_side_goes_first() -> None:
    assert audit.interleaved(1) == ["on", "off"]
    assert audit.interleaved(2) == ["on", "off", "off", "on"]


def test_combined_averages_rates_and_adds_requests() -> None:
    runs = [
        {"ok_rps": 100.0, "p99_ms": 10.0, "requests": 600},
        {"ok_rps": 200.0, "p99_ms": 30.0, "requests": 1200},
    ]
    assert audit.combined(runs) == {"ok_rps": 150.0, "p99_ms": 20.0, "requests": 1800}


def test_per_event_splits_the_relation_sizes() -> None:
    sizes = {"rows": 10, "total_bytes": 5000, "table_bytes": 2000, "index_bytes": 2500}
    assert audit.per_event(sizes) == {
        "total": 500.0,
        "table": 200.0,
        "indexes": 250.0,
        "toast_and_maps": 50.0,
    }


@pytest.mark.django_db(databases=["default", "owner"])
def test_fill_writes_the_event_mix_into_a_chain_that_verifies() -> None:
    tenant = uuid.uuid4()
    clients = [str(uuid.uuid4()) for _ in range(audit.PAGE + 10)]
    pool = {
        "tenant": str(tenant),
        "actors": [str(uuid.uuid4()), str(uuid.uuid4())],
        "roles": ["owner", "staff"],
        "clients": clients,
        "agents": audit.AGENTS,
        "first": 1,
        "last": 100,
    }
    with connections[chain.USING].cursor() as cursor:
        cursor.execute(audit.fill_sql(audit.CHAINED), pool)
        cursor.execute(
            "SELECT action, count(*) FROM audit_auditevent WHERE tenant_id = %s GROUP BY 1",
            [tenant],
        )
        mix = dict(cursor.fetchall())
        cursor.execute(
            "SELECT subject_ids, detail FROM audit_auditevent"
            " WHERE tenant_id = %s AND action = 'client.list'",
            [tenant],
        )
        pages = cursor.fetchall()
    assert mix == {"client.list": 10, "access.denied": 2, "client.read": 88}
    for subjects, detail in pages:
        assert len(subjects) == audit.PAGE
        assert set(map(str, subjects)) <= set(clients)
        # What a page of the client list records: the ids once, the count in detail.
        assert json.loads(detail) == {"count": audit.PAGE}
    report = chain.verify_chain(tenant)
    assert report.ok
    assert report.events == 100
