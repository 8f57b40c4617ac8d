"""Personal API tokens: list, create (the plain value is shown once), revoke."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import get_adapter as get_account_adapter
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST, require_safe

from custodia.accounts import sessionlist, sessions, stepup
from custodia.accounts.access import access_token_by_id, list_tokens, recent_security_events
from custodia.accounts.actions import do_create_api_token, do_revoke_api_token
from custodia.accounts.forms import TokenForm
from custodia.accounts.stepup import SessionAuthentication
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.web.decorators import member_required
from custodia.web.forms import form_action


def _tokens_page(
    request: HttpRequest, actor: Actor, form: TokenForm, status: int = 200
) -> HttpResponse:
    return render(
        request, "accounts/tokens.html", {"tokens": list_tokens(actor), "form": form}, status=status
    )


@require_safe
@member_required(Permission.TOKENS_CREATE)
def token_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The actor's own tokens in this business, and a form for a new one."""
    return _tokens_page(request, actor, TokenForm())


@require_POST
@member_required(Permission.TOKENS_CREATE)
def token_create(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Create a token and show its value this once (never stored, never in an address)."""
    form = TokenForm(request.POST)
    return form_action(
        request,
        form,
        lambda: do_create_api_token(
            actor=actor, name=form.cleaned_data["name"], days=form.cleaned_data["days"]
        ),
        done=lambda created: render(
            request, "accounts/token_created.html", {"token": created[0], "plain": created[1]}
        ),
        page=lambda status: _tokens_page(request, actor, form, status=status),
    )


@require_POST
@member_required(Permission.TOKENS_CREATE)
def token_revoke(request: HttpRequest, actor: Actor, token_id: str) -> HttpResponse:
    """The token stops working at once."""
    do_revoke_api_token(access_token_by_id(actor, token_id), actor=actor)
    messages.success(request, "Token revoked.")
    return redirect("token_list")


@require_safe
@login_required
def step_up(request: HttpRequest) -> HttpResponse:
    """Walk the person through what a fresh proof still lacks, then back to where they were.

    Password or passkey first (allauth's re-authentication page offers both), then a second
    factor when one is enrolled (code or security key); each comes back here until complete.
    """
    wanted = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        wanted = reverse("dashboard")
    proof = SessionAuthentication(request)
    if stepup.is_fresh(proof.stepped_up_at()):
        return redirect(wanted)
    here = f"{reverse('step_up')}?{urlencode({'next': wanted})}"
    first_factor = proof.latest(stepup.PASSWORD), proof.latest(stepup.PASSKEY)
    if not any(stepup.is_fresh(at) for at in first_factor):
        step = reverse("account_reauthenticate")
    else:
        # allauth's second-factor re-authentication for what is enrolled (code or security key).
        methods = get_account_adapter(request).get_reauthentication_methods(request.user)
        second = [m["url"] for m in methods if str(m["id"]).startswith("mfa_reauthenticate")]
        step = second[0] if second else reverse("account_reauthenticate")
    return redirect(f"{step}?{urlencode({'next': here})}")


# --- Security panel ---------------------------------------------------------------------------


def _security_events(request: HttpRequest) -> list[Any] | None:
    """The person's recent security events, when the section that shows them is installed."""
    try:
        get_template("accounts/security_events.html")
    except TemplateDoesNotExist:
        return None
    return recent_security_events(request.user)


@require_safe
@login_required
def security_panel(request: HttpRequest) -> HttpResponse:
    """The person's sessions (end one, the others, or all), API tokens and security events."""
    actor: Actor | None = getattr(request, "actor", None)
    show_tokens = actor is not None and actor.can(Permission.TOKENS_CREATE)
    context = {
        "sessions": sessionlist.list_sessions(request),
        "show_tokens": show_tokens,
        "tokens": list_tokens(actor) if show_tokens and actor is not None else [],
        "can_set_policy": actor is not None and actor.can(Permission.BUSINESS_SECURITY_WRITE),
        "security_events": _security_events(request),
    }
    return render(request, "accounts/security.html", context)


@require_POST
@login_required
def security_session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    """End one of the person's sessions; ending this one logs out here."""
    current = sessionlist.is_current_session(request, session_id)
    if not sessions.end_session_by_id(request, session_id):
        raise Http404("No such session.")
    if current:
        messages.info(request, "This session has ended. Log in again to continue.")
        return redirect("account_login")
    messages.success(request, "Session ended: that browser is logged out on its next request.")
    return redirect("security_panel")


@require_POST
@login_required
def security_sessions_end_others(request: HttpRequest) -> HttpResponse:
    """End every session but this one."""
    count = sessions.end_other_sessions(request)
    messages.success(
        request,
        f"Ended {count} other session{'s' if count != 1 else ''}."
        if count
        else "There were no other sessions to end.",
    )
    return redirect("security_panel")


@require_POST
@login_required
def security_sessions_end_all(request: HttpRequest) -> HttpResponse:
    """End every session, this one included."""
    sessions.end_all_sessions(request)
    messages.info(request, "All your sessions have ended. Log in again to continue.")
    return redirect("account_login")
