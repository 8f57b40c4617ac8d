"""The app's URLs plus one view that fails with customer values in its locals and message."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.urls import path

from custodia.urls import urlpatterns as app_urlpatterns

logger = logging.getLogger("custodia.tests.failing")

CLIENT_NAME = "Marker-Name-Q7ZX Ottoline Vance"
DOOR_CODE = "Marker-Door-8841"


def save_note(request: HttpRequest, secret: str) -> HttpResponse:
    client_name, door_code = CLIENT_NAME, DOOR_CODE
    note = request.POST.get("note", "")
    logger.error("could not save the note %s of %s", note, client_name)
    raise ValueError(f"cannot save the note of {client_name} (door code {door_code}, {secret})")


urlpatterns = [
    path("failing/<str:secret>/", save_note, name="failing_note"),
    *app_urlpatterns,
]
