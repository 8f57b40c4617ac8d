"""Settings of the two-node test's servers (test_two_nodes.py): Custodia's, with two changes.

The Redis cache keys its entries under the run's own prefix (CUSTODIA_TEST_CACHE_PREFIX), so the
test shares 127.0.0.1:6379 with other runs and deletes only its own keys; and a re-authentication
counts for a few seconds instead of five minutes, so the test can watch one expire.
"""

from __future__ import annotations

import os

from custodia.settings import *  # noqa: F403
from custodia.settings import CACHES

CACHES["default"]["KEY_PREFIX"] = os.environ["CUSTODIA_TEST_CACHE_PREFIX"]
ACCOUNT_REAUTHENTICATION_TIMEOUT = int(os.environ["CUSTODIA_TEST_REAUTHENTICATION_SECONDS"])
