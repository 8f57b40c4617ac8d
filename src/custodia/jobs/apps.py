from __future__ import annotations

from django.apps import AppConfig
from procrastinate.contrib.django import app


class Config(AppConfig):
    name = "custodia.jobs"
    label = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every task module of settings.PROCRASTINATE_IMPORT_PATHS in every process, not only
        # in the worker: a page that starts a job finds its kind registered (installed apps'
        # `tasks.py` are loaded by procrastinate's own app, listed before this one).
        app.perform_import_paths()
