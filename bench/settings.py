"""Custodia's settings for benchmark servers: the same, except the rate limits.

All load comes from 127.0.0.1, so the limiter would answer most logins with a cheap 429 and the
login figures would measure the limiter. Switching it off models the worst case, a storm from
many addresses, where only the bounded hasher protects the other requests.

The API's per-token limit (api/ratelimit.py) stays on but out of reach: wrk drives one token far
past any real client's rate, and every API figure should include the limiter's cost (one
statement per request), not its cheap 429s.
"""

from __future__ import annotations

from custodia.settings import *  # noqa: F403

# Custodia's URLs, plus the baseline views of scenario 1 when CUSTODIA_BENCH_BASELINE=1.
ROOT_URLCONF = "bench.urls"
ACCOUNT_RATE_LIMITS = False
API_RATE_LIMIT_PER_MINUTE = 1_000_000
