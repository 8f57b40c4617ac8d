"""Custodia's settings for benchmark servers: the same, except allauth's per-IP rate limits.

All load comes from 127.0.0.1, so the limiter would answer most logins with a cheap 429 and the
login figures would measure the limiter. Switching it off models the worst case, a storm from
many addresses, where only the bounded hasher protects the other requests.
"""

from __future__ import annotations

from custodia.settings import *  # noqa: F403

ACCOUNT_RATE_LIMITS = False
