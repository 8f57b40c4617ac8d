"""Attack review of issue 14's pages and API routes: malformed, foreign and oversized ids, and
wrong methods, are a 404 or 405, never a 500 (and never another business's row)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import TenantMatrix

BAD_IDS = ["not-a-uuid", "0" * 5000, "..%2F..%2Fetc%2Fpasswd", "%00", "urn:uuid:zz"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_not_found(matrix: TenantMatrix, web_as: Any, api_as: Any, bad: str) -> None:
    owner = matrix.a.owner
    page = web_as(owner)
    assert page.get(f"/jobs/{bad}/").status_code == 404
    assert page.get(f"/app/exports/{bad}/").status_code == 404
    assert page.post(f"/app/exports/{bad}/download/").status_code == 404
    api = api_as(owner)
    assert api.get(f"/api/v1/jobs/{bad}").status_code == 404
    assert api.get(f"/api/v1/exports/{bad}").status_code in (403, 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/jobs/{id}/", 405),
        ("put", "/app/business/export/", 405),
        ("get", "/app/exports/{id}/download/", 405),
        ("post", "/app/exports/{id}/", 405),
        ("get", "/app/portal/my-data/", 405),
        ("get", "/app/business/close/", 405),
        ("get", "/app/business/reopen/", 405),
        ("get", "/app/portal/erasure/", 405),
        ("delete", "/app/clients/{id}/erase/", 405),
    ],
)
def test_wrong_methods_are_405(
    matrix: TenantMatrix, web_as: Any, method: str, path: str, allowed: int
) -> None:
    page = web_as(matrix.a.owner)
    response = getattr(page, method)(path.format(id=matrix.a.client.pk))
    assert response.status_code == allowed, (method, path, response.status_code)
