"""The emailed unlock link: lifts a sign-in pause for the browser that follows it, once.

Like allauth's reset links, the token leaves the address at once: the first request keeps it
in the session and redirects to a token-free page, so it is in no later Referer or history entry.
The pause is lifted only on POST, so a mail scanner that fetches links cannot spend it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from custodia.accounts.actions import do_record_security_event
from custodia.accounts.models import SecurityEventKind
from custodia.accounts.ratelimit import redeem_unlock_token

TOKEN_SESSION_KEY = "custodia.unlock_token"  # noqa: S105


@require_safe
def unlock_from_link(request: HttpRequest, token: str) -> HttpResponse:
    """Keep the link's token in the session and continue on an address without it."""
    request.session[TOKEN_SESSION_KEY] = token[:500]
    return redirect("account_unlock_confirm")


@require_http_methods(["GET", "HEAD", "POST"])
def unlock_confirm(request: HttpRequest) -> HttpResponse:
    """A button to lift the pause; pressing it spends the token."""
    token = request.session.get(TOKEN_SESSION_KEY)
    if token is None:
        return render(request, "accounts/unlock.html", {"state": "invalid"}, status=400)
    if request.method != "POST":
        return render(request, "accounts/unlock.html", {"state": "confirm"})
    del request.session[TOKEN_SESSION_KEY]
    user_id = redeem_unlock_token(request, token)
    if user_id is None:
        return render(request, "accounts/unlock.html", {"state": "invalid"}, status=400)
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is not None:
        do_record_security_event(user, SecurityEventKind.UNLOCKED, request=request)
    return render(request, "accounts/unlock.html", {"state": "done"})
