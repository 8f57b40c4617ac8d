"""Security declared at the view: who may open a page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from custodia.accounts.mfa import is_platform_operator
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.tenancy.access import memberships_of

P = ParamSpec("P")
ActorView = Callable[Concatenate[HttpRequest, Actor, P], HttpResponse]
View = Callable[Concatenate[HttpRequest, P], HttpResponse]


def member_required(permission: Permission | None = None) -> Callable[[ActorView[P]], View[P]]:
    """Login, an active membership and (when given) `permission`; the view receives the actor.

    Logged-out people are sent to log in, members acting for no business to choose one, platform
    operators get 404, other people without a business see a page saying so, and a role
    without the permission gets 403 from `actor.require`.
    """

    def decorator(view: ActorView[P]) -> View[P]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                # The path only: a query string may hold a search term.
                return redirect_to_login(request.path)
            actor: Actor | None = getattr(request, "actor", None)
            if actor is None and is_platform_operator(request.user):
                # No business page exists for an operator (docs/operators.md); the dashboard,
                # where every sign-in lands, sends them to their console instead.
                match = request.resolver_match
                if match is not None and match.url_name == "dashboard":
                    return redirect("operator_console")
                raise Http404("No such page.")
            if actor is None:
                # A member acting for no business yet (theirs went away): nothing is done
                # here, they choose first (web/middleware.py).
                if memberships_of(request.user).exists():  # type: ignore[arg-type]
                    return redirect("choose_business")
                return render(request, "web/no_business.html", status=403)
            if permission is not None:
                actor.require(permission)
            return view(request, actor, *args, **kwargs)

        return wrapper

    return decorator
