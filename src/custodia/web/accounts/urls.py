"""Personal API tokens, the security panel and the calendar feed (mounted under /app/)."""

from __future__ import annotations

from django.urls import path

from custodia.web.accounts import feeds, unlock, views

urlpatterns = [
    path("tokens/", views.token_list, name="token_list"),
    path("tokens/new/", views.token_create, name="token_create"),
    path("tokens/<str:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("security/", views.security_panel, name="security_panel"),
    path(
        "security/sessions/<int:session_id>/end/",
        views.security_session_end,
        name="security_session_end",
    ),
    path(
        "security/sessions/end-others/",
        views.security_sessions_end_others,
        name="security_sessions_end_others",
    ),
    path(
        "security/sessions/end-all/",
        views.security_sessions_end_all,
        name="security_sessions_end_all",
    ),
    path("security/calendar-feed/", feeds.calendar_feed_page, name="calendar_feed_page"),
    path("security/calendar-feed/new/", feeds.calendar_feed_create, name="calendar_feed_create"),
    path(
        "security/calendar-feed/revoke/",
        feeds.calendar_feed_revoke,
        name="calendar_feed_revoke",
    ),
    path("unlock/", unlock.unlock_confirm, name="account_unlock_confirm"),
    path("unlock/<str:token>/", unlock.unlock_from_link, name="account_unlock"),
    path("step-up/", views.step_up, name="step_up"),
]
