"""Settings for the login-storm server (test_login_storm.py): Custodia's, without allauth's per-IP
rate limits. The whole storm comes from 127.0.0.1, and the limiter would answer most of it with a
cheap 429 before any hash: switched off, only the hashing pool's bound stands in its way, the
worst case (a storm from many addresses). The per-name lockout stays on."""

from __future__ import annotations

from custodia.settings import *  # noqa: F403

ACCOUNT_RATE_LIMITS = False
