"""The one shape of a page that acts: bind a form, call the action, then redirect or show why not.

An action refuses with a ValidationError naming fields; the refusal lands on the form's fields
(or above the form), and the page is shown again with status 400. A valid form whose action
succeeds gets its success message and the answer `done` gives (usually a redirect).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

T = TypeVar("T")


def add_action_errors(
    form: forms.Form, exc: ValidationError, field_names: Mapping[str, str] | None = None
) -> None:
    """Attach an action's ValidationError to the bound form: on the field it names, else the form.

    `field_names` maps an action's field name to the form's when they differ.
    """
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.error_dict.items():
        name = (field_names or {}).get(field, field)
        found: Any = [message for error in errors for message in error.messages]
        form.add_error(name if name in form.fields else None, found)


def form_action(
    request: HttpRequest,
    form: forms.Form,
    action: Callable[[], T],
    *,
    done: Callable[[T], HttpResponse],
    page: Callable[[int], HttpResponse],
    success: str | None = None,
    field_names: Mapping[str, str] | None = None,
) -> HttpResponse:
    """Run `action` on a valid `form`: then `success` and `done(result)`, else `page(400)`."""
    if form.is_valid():
        try:
            result = action()
        except ValidationError as exc:
            add_action_errors(form, exc, field_names)
        else:
            if success:
                messages.success(request, success)
            return done(result)
    return page(400)
