"""One transaction per request, with the RLS settings made from the authenticated membership."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from custodia.accounts.stepup import SessionAuthentication
from custodia.tenancy import access
from custodia.tenancy.context import Actor, activate, clear, set_db_context

ACTIVE_BUSINESS_SESSION_KEY = "custodia.business_id"


class TenantMiddleware:
    """Everything after this runs inside one transaction that sees only the actor's rows.

    A response of 500 or more rolls the transaction back, so nothing is half-written.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with transaction.atomic():
            request.actor = None  # type: ignore[attr-defined]
            user = request.user
            # Each call sets every setting, so nothing of an earlier request can linger.
            if not user.is_authenticated:
                clear()
            else:
                set_db_context(user_id=user.pk)
                membership = access.active_membership(
                    user, request.session.get(ACTIVE_BUSINESS_SESSION_KEY)
                )
                if membership is not None:
                    actor = Actor(
                        user,  # type: ignore[arg-type]
                        membership,
                        authentication=SessionAuthentication(request),
                    )
                    activate(actor)
                    request.actor = actor  # type: ignore[attr-defined]
            response = self.get_response(request)
            if response.status_code >= 500:
                transaction.set_rollback(True)
        return response
