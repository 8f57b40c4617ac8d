"""The JSON API: one NinjaAPI, session or bearer-token auth, errors that explain themselves.

Its parts: auth.py (who is calling), inputs.py (what it accepts), errors.py (how it refuses),
pagination.py (pages of lists); routes.py mounts each app's router on `api`.
"""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI

from custodia.api.auth import BearerTokenAuth, SessionAuth
from custodia.api.errors import (
    BODY_ERROR_RESPONSES,
    ERROR_RESPONSES,
    ERROR_SCHEMA,
    RENDERER,
    install_error_handlers,
)
from custodia.api.inputs import JsonParser


class CustodiaAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document lists the error answers of every operation."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                errors = dict(ERROR_RESPONSES)
                if "requestBody" in operation:
                    errors.update(BODY_ERROR_RESPONSES)
                for status, description in errors.items():
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                }
                            },
                        },
                    )
        return schema


api = CustodiaAPI(
    title="Custodia API",
    version="1",
    description=(
        "Custodia's JSON API. Authenticate with a personal token (`Authorization: Bearer cst_...`,"
        " limited to its scopes) or, from the web app, with the session cookie and a CSRF token."
        ' Errors are JSON: `{"detail": message}`, plus `errors` by field for 422.'
        " Each token, and each signed-in session, may make `CUSTODIA_API_RATE_LIMIT` requests a"
        " minute (120 unless the operator set another): that many at once after a quiet minute,"
        " then one every 60/N seconds; more are answered 429 with `Retry-After` in seconds."
        " A body over 2.5 MB is answered 413. Visit times lie between 2000-01-01 and 2099-12-31."
        " Lists answer a page: `items`, `count` (counted up to 1000; `count_capped` is true past"
        " that), and `next_cursor`/`previous_cursor`, passed back as `cursor` for the next or"
        " previous page; a cursor the server did not issue for that list is answered 400."
    ),
    urls_namespace="api",
    auth=[BearerTokenAuth(), SessionAuth(csrf=True)],
    docs_url="/docs",
    parser=JsonParser(),
    renderer=RENDERER,
)
install_error_handlers(api)
