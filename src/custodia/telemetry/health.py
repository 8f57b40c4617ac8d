"""Readiness: can this node serve? The database as the app role, the keys, a live job worker.

Each check answers ok or failing, nothing more: why it failed goes to the log (its exception's
type), never into the answer, which a load balancer or anyone on its network may read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connections

from custodia.crypto import keyring, keystore
from custodia.telemetry.state import last_worker_heartbeat

logger = logging.getLogger(__name__)

OK, FAILING = "ok", "failing"


class NotReady(Exception):
    """A check's component answered, but not as a ready node needs."""


def check_database() -> None:
    """A round trip on the app's own connection, as the app role (never a superuser's)."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_user")
        row = cursor.fetchone()
    if row is None or row[0] != settings.APP_DB_ROLE:
        raise NotReady("connected as another role than the app's")


def check_keystore() -> None:
    """The KEK loads and unwraps a business's data keys (cached while the key file is the
    same: keyring.keys_for); an empty keystore needs only the KEK."""
    keyring.provider()
    businesses = keystore.business_ids()
    if businesses:
        keyring.keys_for(businesses[0])


def check_worker() -> None:
    """A job worker's heartbeat is fresher than CUSTODIA_JOB_STALLED_SECONDS."""
    newest = last_worker_heartbeat()
    limit = dt.timedelta(seconds=settings.JOB_STALLED_SECONDS)
    if newest is None or dt.datetime.now(dt.UTC) - newest > limit:
        raise NotReady("no job worker has been seen recently")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "keystore": check_keystore,
    "worker": check_worker,
}


def readiness() -> dict[str, str]:
    """Every check by name: "ok" or "failing" (the reason is logged, by its type)."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "worker" and results.get("database") == FAILING:
            # Its heartbeats are in the database: no second wait for a pool that cannot connect.
            results[name] = FAILING
            continue
        try:
            check()
        except Exception as exc:  # noqa: BLE001 (any failure means not ready, never a 500)
            logger.warning("readiness: %s failing (%s)", name, type(exc).__name__)
            results[name] = FAILING
        else:
            results[name] = OK
    return results
