"""The telemetry settings fail loudly, and production refuses a weak metrics token."""

from __future__ import annotations

import pytest

from tests.test_settings import PRODUCTION, import_settings, refused

STRONG = "k2P9vQ7xL4mZ8wR1tY6uN3bC5dF0gH2jS9aE4"


def test_production_refuses_a_weak_metrics_token_without_echoing_it(tmp_path):
    for weak in ("metrics-token", "a" * 40):
        message = refused(tmp_path, {**PRODUCTION, "CUSTODIA_METRICS_TOKEN": weak})
        assert message == "CUSTODIA_METRICS_TOKEN must be at least 32 random characters."
        assert weak not in message


def test_production_takes_a_strong_metrics_token_or_none(tmp_path):
    for env in ({}, {"CUSTODIA_METRICS_TOKEN": STRONG}):
        result = import_settings(tmp_path, {**PRODUCTION, **env})
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "dsn", ["not a dsn", "ftp://key@sentry.example.com/1", "https://sentry.example.com/1"]
)
def test_a_malformed_sentry_dsn_is_refused(tmp_path, dsn):
    message = refused(tmp_path, {"CUSTODIA_SENTRY_DSN": dsn})
    assert message.startswith("CUSTODIA_SENTRY_DSN must be a DSN like")


def test_production_sends_errors_only_over_https(tmp_path):
    env = {**PRODUCTION, "CUSTODIA_SENTRY_DSN": "http://key@sentry.example.com/1"}
    assert refused(tmp_path, env) == "CUSTODIA_SENTRY_DSN must be an https:// DSN in production."
    env["CUSTODIA_SENTRY_DSN"] = "https://key@sentry.example.com/1"
    assert import_settings(tmp_path, env).returncode == 0
