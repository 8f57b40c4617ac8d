"""The benchmark servers' URLs: Custodia's, plus the bare baseline views of scenario 1.

bench/settings.py points ROOT_URLCONF here. The baseline (bench/views.py) is mounted only when
the server runs with CUSTODIA_BENCH_BASELINE=1, so every other scenario measures exactly
Custodia's own URL set.
"""

from __future__ import annotations

from django.urls import include, path

from custodia.core.config import env_bool
from custodia.urls import handler400, handler403, handler404, handler500
from custodia.urls import urlpatterns as custodia_urlpatterns

urlpatterns = list(custodia_urlpatterns)
if env_bool("CUSTODIA_BENCH_BASELINE", False):
    urlpatterns.append(path("bench/bare/", include("bench.views")))

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
