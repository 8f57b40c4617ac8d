"""The detection round every five minutes (a periodic task of the job scheduler), and the SIEM
webhook's deliveries, each a procrastinate job that retries with doubling waits."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from custodia.detection.delivery import OPERATORS_TASK, SIEM_TASK, mail_operators
from custodia.detection.evaluate import TASK, run_detection
from custodia.jobs.registry import periodic_task
from custodia.platform.access import active_operator_emails
from custodia.webhooks.sender import post
from custodia.webhooks.signing import signed_headers

logger = logging.getLogger(__name__)


class SiemNotDelivered(Exception):
    """The SIEM did not take the alert; procrastinate tries again later."""


@periodic_task(TASK, cron="*/5 * * * *", run_at_start=True)
def detect() -> None:
    """One detection round (evaluate.py)."""
    done, failed = run_detection()
    if failed:
        logger.error("detection: %s business round(s) failed, %s done", failed, done)


@app.task(name=OPERATORS_TASK, retry=RetryStrategy(max_attempts=5, exponential_wait=30))
def tell_operators(alert_id: str, rule: str, severity: str) -> None:
    """Email the operators of a platform alert (who they are is read here, in the job's own
    transaction, so the alert's raiser never changes its own database context for it)."""
    with transaction.atomic():
        recipients = active_operator_emails()
    mail_operators(alert_id, rule, severity, recipients)


@app.task(
    name=SIEM_TASK,
    retry=RetryStrategy(max_attempts=settings.ALERT_WEBHOOK_ATTEMPTS, exponential_wait=30),
)
def deliver_to_siem(message_id: str, body: str) -> None:
    """POST one alert to the SIEM webhook, signed; raise (to be retried) unless it took it."""
    send_to_siem(message_id, body, now=timezone.now())


def send_to_siem(message_id: str, body: str, *, now: dt.datetime) -> int:
    """One signed attempt; the answer's status, or SiemNotDelivered."""
    url = settings.ALERT_WEBHOOK_URL
    if not url:
        raise SiemNotDelivered("CUSTODIA_ALERT_WEBHOOK_URL is not set.")
    data = body.encode()
    headers = signed_headers(
        message_id=message_id,
        timestamp=now,
        body=data,
        secrets_in_use=[settings.ALERT_WEBHOOK_SECRET],
    )
    outcome = post(url, data, headers)
    if not outcome.delivered:
        # A fixed phrase of the sender's (never the answer's text): safe to log.
        logger.warning("SIEM delivery of alert %s failed: %s", message_id, outcome.error)
        raise SiemNotDelivered(outcome.error)
    return outcome.status or 0
