"""The vault's WSGI entry point (granian serves it: `custodia vault serve`)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "custodia.vault.settings"
application = get_wsgi_application()
