"""Personal API tokens: list, create (the plain value is shown once), revoke."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from custodia.accounts.access import access_token_by_id, list_tokens
from custodia.accounts.actions import do_create_api_token, do_revoke_api_token
from custodia.tenancy.context import Actor
from custodia.tenancy.permissions import Permission
from custodia.web.decorators import add_action_errors, member_required


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Token name", max_length=80, help_text="What will use it, e.g. “booking spreadsheet”."
    )
    days = forms.IntegerField(
        label="Valid for (days)",
        min_value=1,
        max_value=365,
        required=False,
        help_text=f"1 to 365; {settings.API_TOKEN_DEFAULT_DAYS} if empty.",
    )


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
    if form.is_valid():
        try:
            token, plain = do_create_api_token(
                actor=actor, name=form.cleaned_data["name"], days=form.cleaned_data["days"]
            )
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            return render(request, "accounts/token_created.html", {"token": token, "plain": plain})
    return _tokens_page(request, actor, form, status=400)


@require_POST
@member_required(Permission.TOKENS_CREATE)
def token_revoke(request: HttpRequest, actor: Actor, token_id: str) -> HttpResponse:
    """The token stops working at once."""
    do_revoke_api_token(access_token_by_id(actor, token_id), actor=actor)
    messages.success(request, "Token revoked.")
    return redirect("token_list")
