"""Headers and method rules Django's own middleware does not set."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from custodia.accounts.hashers import HashingBusy
from custodia.accounts.stepup import StepUpRequired

REFUSED_METHODS = frozenset({"TRACE", "TRACK", "CONNECT"})
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=()"
)


class RefuseUnsafeMethodsMiddleware:
    """TRACE and friends are refused before anything else runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in REFUSED_METHODS:
            return HttpResponseNotAllowed(
                ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
            )
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """Permissions-Policy, CORP, and no caching of anything shown to a logged-in person."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated) or request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        elif "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-cache"
        return response


BUSY_MESSAGE = "Too many sign-ins are being checked right now. Please try again in a few seconds."


class BusyMiddleware:
    """A request that found every password-hashing slot taken gets a 503 with Retry-After.

    Last in the list, so the 503 passes through the request's transaction (rolled back) and every
    header middleware on its way out.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, HashingBusy):
            return None
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": BUSY_MESSAGE}, status=503)
        else:
            response = render(
                request, "web/error.html", {"title": "Busy", "message": BUSY_MESSAGE}, status=503
            )
        response.headers["Retry-After"] = "2"
        return response


class StepUpMiddleware:
    """A page whose action asked for a fresh proof of identity sends the person to get one.

    The API answers the same refusal itself (403 with the message). A form is not replayed:
    the person comes back to the page they submitted from and submits again.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, StepUpRequired) or request.path.startswith("/api/"):
            return None
        if not request.user.is_authenticated:
            return None
        back = request.get_full_path()
        if request.method != "GET":
            referer = urlsplit(request.headers.get("Referer", ""))
            same_site = referer.netloc == request.get_host() and referer.scheme == "https"
            back = referer.path if same_site and referer.path else reverse("dashboard")
            messages.info(request, f"{exception} Then submit again.")
        return redirect(f"{reverse('step_up')}?{urlencode({'next': back})}")
