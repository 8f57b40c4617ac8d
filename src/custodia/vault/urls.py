"""The vault's URLs: the signed JSON API under /v1/, the hosted card form under /form/, the
gateways' webhooks under /gateway-events/ (signed by the gateway)."""

from __future__ import annotations

from django.urls import path

from custodia.vault import views

urlpatterns = [
    path("v1/forms", views.forms),
    path("v1/references/<str:ref>/redeem", views.redeem),
    path("v1/cards/<str:token>", views.card),
    path("v1/charges", views.charges),
    path("v1/charges/<str:charge_id>", views.charge),
    path("v1/charges/<str:charge_id>/refunds", views.refunds),
    path("v1/businesses/<str:business>/destroy", views.destroy),
    path("form/<str:form_id>/", views.hosted_form, name="hosted-form"),
    path("gateway-events/<str:gateway_name>/", views.gateway_events),
    path("static/vault/form.css", views.form_css),
]
handler404 = "custodia.vault.views.not_found"
handler500 = "custodia.vault.views.server_error"
