"""The ids of incoming gateway webhooks already handled (vault/gateways/incoming.py:
SqlSeenEvents, SEEN_EVENTS_TABLE; docs/stripe-gateway.md, "The replay store")."""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("vault", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql="""
            CREATE TABLE vault_gateway_event (
                gateway text NOT NULL,
                event_id text NOT NULL,
                received_at timestamptz NOT NULL,
                PRIMARY KEY (gateway, event_id)
            )
            """,
            reverse_sql="DROP TABLE vault_gateway_event",
        )
    ]
