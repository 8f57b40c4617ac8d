"""The OpenAPI document and the docs page: they work, satisfy the CSP and hold no secrets."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders

from tests.api.test_matrix import ENDPOINTS
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix


def test_openapi_document_lists_every_endpoint(matrix: TenantMatrix) -> None:
    response = HttpsClient().get("/api/v1/openapi.json", secure=True)
    assert response.status_code == 200
    spec = response.json()
    documented = {
        (method.upper(), re.sub(r"\{\w+\}", "{id}", path.removeprefix("/api/v1")))
        for path, operations in spec["paths"].items()
        for method in operations
    }
    assert documented == set(ENDPOINTS)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerTokenAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["SessionAuth"]["in"] == "cookie"
    assert spec["components"]["schemas"]["ClientIn"]["additionalProperties"] is False


def test_openapi_document_holds_no_secrets_or_data(matrix: TenantMatrix, api_as: Any) -> None:
    client = api_as(matrix.a.owner)  # even an authenticated reader gets only the schema
    text = client.get("/api/v1/openapi.json", secure=True).content.decode()
    for secret in (
        settings.SECRET_KEY,
        "4711",
        "0815",
        matrix.a.client.name,
        str(matrix.a.client.pk),
        matrix.a.owner.user.email,
    ):
        assert secret not in text
    assert not re.search(r"cst_[0-9a-f]{12}_", text), "a real token in the spec"


def test_docs_page_satisfies_the_csp(db: None) -> None:
    response = HttpsClient().get("/api/v1/docs", secure=True)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert script_src is not None and script_src.group(1).split() == ["'self'"]
    html = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts
    for attributes, body in scripts:
        source = re.search(r'src="([^"]+)"', attributes)
        if source:
            # Loaded from our own origin, from files that exist.
            assert source.group(1).startswith(settings.STATIC_URL), source.group(1)
            assert finders.find(source.group(1).removeprefix(settings.STATIC_URL))
            assert not body.strip()
        else:
            # A JSON data block is not executed, so script-src does not apply to it.
            assert 'type="application/json"' in attributes
    assert not re.search(r"\son\w+=", html), "inline event handlers break the CSP"
    for sheet in re.findall(r'<link[^>]*href="([^"]+\.css)"', html):
        assert sheet.startswith(settings.STATIC_URL)


def test_openapi_document_has_no_duplicate_keys(matrix: TenantMatrix) -> None:
    """Swagger UI parses the document as YAML, which refuses a key given twice (the feed's
    "200" once did: an int from `response=` and a string from `openapi_extra`)."""
    raw = HttpsClient().get("/api/v1/openapi.json", secure=True).content.decode()
    repeated: list[str] = []

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _value in pairs]
        repeated.extend(key for key in set(keys) if keys.count(key) > 1)
        return dict(pairs)

    json.loads(raw, object_pairs_hook=no_repeats)
    assert repeated == []
