"""Landing page, dashboard, and error pages that reveal nothing."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "web/home.html")


@require_safe
def signup_redirect(request: HttpRequest) -> HttpResponse:
    return redirect("account_signup")


@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "web/dashboard.html")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "web/error.html", {"title": "Bad request"}, status=400)


def forbidden(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "web/error.html", {"title": "Not allowed"}, status=403)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "web/error.html", {"title": "Not found"}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    return render(request, "web/error.html", {"title": "Something went wrong"}, status=500)
