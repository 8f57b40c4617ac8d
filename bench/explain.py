"""Print (as JSON) the plans of the target business's list and search queries, under its RLS."""

from __future__ import annotations

import json
import os
import sys

import django


def main() -> None:
    """EXPLAIN ANALYZE each query the list API runs (a keyset page, the next one, the capped
    count), as the target owner (custodia_app, RLS on)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.db import transaction

    from custodia.clients.access import CLIENT_ORDER, CLIENTS_PER_PAGE, list_clients
    from custodia.core.actor import acting_as
    from custodia.ops.management.commands.bench_data import TARGET_OWNER_EMAIL, TARGET_SLUG
    from custodia.tenancy.actors import console_actors, find_user
    from custodia.tenancy.paging import COUNT_CAP, past_key

    queries = json.loads(sys.argv[1])
    plans = {}
    with transaction.atomic():
        actor = console_actors(find_user(TARGET_OWNER_EMAIL), TARGET_SLUG)[0]
        with acting_as(actor):
            for label, query in queries.items():
                clients = list_clients(actor, query=query)
                size = CLIENTS_PER_PAGE + 1  # a keyset page reads one row more: is there a next?
                plans[label] = {
                    "page": clients[:size].explain(analyze=True, buffers=True),
                    "count (capped)": clients.order_by()
                    .values("id")[: COUNT_CAP + 1]
                    .explain(analyze=True, buffers=True),
                }
                first_page = list(clients[:CLIENTS_PER_PAGE])
                if first_page:
                    last = first_page[-1]
                    # The next page: after the last row of the first, by (name_search, id).
                    key = [last.name_search, last.pk]
                    after = clients.filter(past_key(CLIENT_ORDER, key, forward=True))
                    plans[label]["next page"] = after[:size].explain(analyze=True, buffers=True)
        transaction.set_rollback(True)
    sys.stdout.write(json.dumps(plans))


if __name__ == "__main__":
    main()
