"""Staff, invitations and the business switcher."""

from __future__ import annotations

from django.urls import path

from custodia.web.tenancy import views

urlpatterns = [
    path("app/staff/", views.staff_list, name="staff_list"),
    path("app/staff/invite/", views.staff_invite, name="staff_invite"),
    path(
        "app/staff/invitations/<str:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("app/staff/<str:membership_id>/role/", views.member_role, name="member_role"),
    path("app/staff/<str:membership_id>/cards/", views.member_cards, name="member_cards"),
    path(
        "app/staff/<str:membership_id>/deactivate/",
        views.member_deactivate,
        name="member_deactivate",
    ),
    path("app/switch/", views.switch_business, name="switch_business"),
    path("app/choose/", views.choose_business, name="choose_business"),
    path("app/settings/", views.business_settings, name="business_settings"),
    path("app/business/security/", views.business_security, name="business_security"),
    path("app/business/retention/", views.business_retention, name="business_retention"),
    path("app/business/delete/", views.business_delete, name="business_delete"),
    path("app/business/close/", views.business_close, name="business_close"),
    path("app/business/reopen/", views.business_reopen, name="business_reopen"),
    # The accept page comes first: "accept" must never be read as a secret.
    path("invite/<str:prefix>/accept/", views.invitation_accept, name="invitation_accept"),
    path("invite/<str:prefix>/<str:secret>/", views.invitation_open, name="invitation_open"),
]
