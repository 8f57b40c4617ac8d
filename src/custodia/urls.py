"""Every URL of the app: pages per app, allauth, the API, and the well-known files."""

from __future__ import annotations

from django.urls import include, path
from django.views.generic import RedirectView

from custodia.api.routes import api
from custodia.web import views as web_views
from custodia.web.platform import views as platform_views
from custodia.web.probes import views as probes
from custodia.web.scheduling import feed as calendar_feed
from custodia.web.trust import views as trust_views
from custodia.web.wallet import urls as wallet_urls

urlpatterns = [
    path("", web_views.home, name="home"),
    path("app/", web_views.dashboard, name="dashboard"),
    path("signup/", web_views.signup_redirect, name="business_signup"),
    # The session list is the security panel's: allauth's own page would check each listed
    # session by its stored key (accounts/sessionstore.py) and drop every one from the list.
    path("accounts/sessions/", RedirectView.as_view(pattern_name="security_panel")),
    path("accounts/", include("allauth.urls")),
    path("", include("custodia.web.tenancy.urls")),
    path("app/", include("custodia.web.accounts.urls")),
    path("app/", include("custodia.web.clients.urls")),
    path("app/", include("custodia.web.scheduling.urls")),
    path("app/", include("custodia.web.payments.urls")),
    path("app/", include(wallet_urls.app_urlpatterns)),
    # Apple's PassKit web service: devices, no session (docs/wallet.md).
    path("wallet/", include(wallet_urls.service_urlpatterns)),
    # A member's calendar feed: the address's secret authenticates, no session (docs/visits.md).
    path(
        "calendar/<str:prefix>/<str:secret>.ics",
        calendar_feed.calendar_feed,
        name="calendar_feed",
    ),
    path("app/", include("custodia.web.audit.urls")),
    path("app/", include("custodia.web.export.urls")),
    path("app/", include("custodia.web.webhooks.urls")),
    path("app/", include("custodia.web.detection.urls")),
    path("jobs/", include("custodia.web.jobs.urls")),
    path("api/v1/", api.urls),
    path(".well-known/security.txt", trust_views.security_txt, name="security_txt"),
    path("security/", trust_views.security_page, name="security_page"),
    # The operators' probes, answered early in the pipeline (web/middleware.py: ProbeMiddleware).
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("metrics", probes.prometheus, name="metrics"),
    # Vulnerability reports from anyone, and the operators' console (docs/operators.md).
    path("security/report/", platform_views.report_form, name="security_report"),
    path("operator/", include("custodia.web.platform.urls")),
    path("", include("custodia.web.trust.urls")),
]

handler400 = "custodia.web.views.bad_request"
handler403 = "custodia.web.views.forbidden"
handler404 = "custodia.web.views.not_found"
handler500 = "custodia.web.views.server_error"
