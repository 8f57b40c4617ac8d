"""The emailed unlock link: lifts a sign-in pause for the browser that follows it, once.

Like allauth's reset links, the token leaves the address at once: the first request hands it to
the browser in a short-lived cookie (HttpOnly, Secure, sent only to the confirmation page) and
redirects to a token-free page, so it is in no later Referer or history entry. The token is never
kept server-side: sessions live in the database, which holds no token secrets. The pause is
lifted only on POST, so a mail scanner that fetches links cannot spend it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from custodia.accounts.notifications import notify_unlocked
from custodia.accounts.throttle import redeem_unlock_token

TOKEN_COOKIE = "__Secure-custodia-unlock"  # noqa: S105 - the cookie's name, not a secret
TOKEN_COOKIE_SECONDS = 15 * 60  # long enough to press the button


def _forget_token(response: HttpResponse) -> HttpResponse:
    response.delete_cookie(TOKEN_COOKIE, path=reverse("account_unlock_confirm"), samesite="Lax")
    return response


@require_safe
def unlock_from_link(request: HttpRequest, token: str) -> HttpResponse:
    """Give the link's token to this browser alone and continue on an address without it."""
    response = redirect("account_unlock_confirm")
    response.set_cookie(
        TOKEN_COOKIE,
        token[:500],
        max_age=TOKEN_COOKIE_SECONDS,
        path=reverse("account_unlock_confirm"),
        secure=True,
        httponly=True,
        samesite="Lax",
    )
    return response


@require_http_methods(["GET", "HEAD", "POST"])
def unlock_confirm(request: HttpRequest) -> HttpResponse:
    """A button to lift the pause; pressing it spends the token."""
    token = request.COOKIES.get(TOKEN_COOKIE, "")
    if not token:
        return render(request, "accounts/unlock.html", {"state": "invalid"}, status=400)
    if request.method != "POST":
        return render(request, "accounts/unlock.html", {"state": "confirm"})
    user_id = redeem_unlock_token(request, token)
    if user_id is None:
        return _forget_token(
            render(request, "accounts/unlock.html", {"state": "invalid"}, status=400)
        )
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is not None:
        notify_unlocked(request, user)
    return _forget_token(render(request, "accounts/unlock.html", {"state": "done"}))
