"""Print (as JSON) the plans of the target business's list and search queries, under its RLS."""

from __future__ import annotations

import json
import os
import sys

import django


def main() -> None:
    """EXPLAIN ANALYZE each query the list API runs, as the target owner (custodia_app, RLS on)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.db import transaction

    from custodia.clients.access import list_clients
    from custodia.core.actor import acting_as
    from custodia.ops.management.commands.bench_data import TARGET_OWNER_EMAIL, TARGET_SLUG
    from custodia.tenancy.actors import console_actors, find_user

    queries = json.loads(sys.argv[1])
    plans = {}
    with transaction.atomic():
        actor = console_actors(find_user(TARGET_OWNER_EMAIL), TARGET_SLUG)[0]
        with acting_as(actor):
            for label, query in queries.items():
                clients = list_clients(actor, query=query)
                plans[label] = {
                    "page": clients[:50].explain(analyze=True, buffers=True),
                    "count": clients.order_by().explain(analyze=True, buffers=True),
                }
        transaction.set_rollback(True)
    sys.stdout.write(json.dumps(plans))


if __name__ == "__main__":
    main()
