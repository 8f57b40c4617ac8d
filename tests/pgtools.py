"""Which PostgreSQL client programs (pg_dump, pg_restore) the tests run against the server."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings

from custodia.embedded import postgres_bin_dir


def client_bin_dir() -> Path:
    """The embedded server's own programs; for an external one, the machine's, as its operator's.

    pg_restore 18 sets transaction_timeout, which a PostgreSQL 15 server refuses: an external
    server is restored with the client programs installed beside it (Debian's pg_wrapper picks
    the cluster's version), falling back to the embedded ones when the machine has none.
    """
    if not settings.EMBEDDED_DATABASE:
        found = shutil.which("pg_restore")
        if found and shutil.which("pg_dump"):
            return Path(found).parent
    return postgres_bin_dir()
