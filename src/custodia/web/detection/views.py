"""The owners' security alerts (docs/detection.md): the list, one alert, acknowledging it.

Owners only: any other role, and another business's owner, gets 404 (detection/access.py)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from custodia.core.actor import Actor
from custodia.detection.access import access_alert_by_id, list_alerts
from custodia.detection.actions import do_acknowledge_alert
from custodia.detection.rules import BY_NAME, label_of
from custodia.web.decorators import member_required


@require_safe
@member_required()
def alert_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The business's newest alerts, unacknowledged ones marked."""
    lines = [(alert, label_of(alert.rule)) for alert in list_alerts(actor)]
    return render(request, "detection/alerts.html", {"lines": lines})


@require_safe
@member_required()
def alert_detail(request: HttpRequest, actor: Actor, alert_id: str) -> HttpResponse:
    """One alert: its rule, evidence and audit events, and the acknowledge button."""
    alert = access_alert_by_id(actor, alert_id)
    return render(
        request, "detection/alert.html", {"alert": alert, "rule": BY_NAME.get(alert.rule)}
    )


@require_POST
@member_required()
def alert_acknowledge(request: HttpRequest, actor: Actor, alert_id: str) -> HttpResponse:
    """Mark the alert as seen, then back to it."""
    alert = do_acknowledge_alert(alert_id, actor=actor)
    messages.success(request, "The alert is acknowledged.")
    return redirect("detection_alert", alert_id=alert.pk)
