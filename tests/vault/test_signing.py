"""Every API request must be signed by the app: each way of getting it wrong is one 401."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from standardwebhooks import Webhook

from custodia.vault.client import VaultClient, signed_payload
from tests.vaults import LiveVault

REFUSAL = {"error": "The request is not correctly signed."}


def send(
    vault: LiveVault, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, object]:
    answer = vault.http().request(method, vault.url + path, body=body or None, headers=headers)
    text = answer.data.decode()
    vault.answers.append(text)
    return answer.status, json.loads(text) if text else None


def headers_for(
    vault: LiveVault, method: str, path: str, business: uuid.UUID, body: bytes = b"", **kwargs: str
) -> dict[str, str]:
    client: VaultClient = vault.client()
    return client.signed_headers(method, path, str(business), kwargs.get("key", ""), body)


def form_body(vault: LiveVault, business: uuid.UUID) -> bytes:
    return json.dumps(
        {"business_id": str(business), "return_url": f"{vault.app_origin}/done"}
    ).encode()


def test_a_correctly_signed_request_is_answered(vault: LiveVault, business: uuid.UUID) -> None:
    body = form_body(vault, business)
    status, data = send(
        vault, "POST", "/v1/forms", headers_for(vault, "POST", "/v1/forms", business, body), body
    )
    assert status == 201 and isinstance(data, dict) and data["form_url"].startswith(vault.url)


def test_unsigned_is_refused(vault: LiveVault, business: uuid.UUID) -> None:
    body = form_body(vault, business)
    assert send(vault, "POST", "/v1/forms", {"Custodia-Business": str(business)}, body) == (
        401,
        REFUSAL,
    )
    assert send(vault, "GET", "/v1/cards/card_x", {}) == (401, REFUSAL)


def test_wrong_secret_is_refused(vault: LiveVault, business: uuid.UUID) -> None:
    body = form_body(vault, business)
    other = vault.client(secret="another secret of the same length as the real one!!")
    headers = other.signed_headers("POST", "/v1/forms", str(business), "", body)
    assert send(vault, "POST", "/v1/forms", headers, body) == (401, REFUSAL)


def test_tampered_body_is_refused(vault: LiveVault, business: uuid.UUID) -> None:
    body = form_body(vault, business)
    headers = headers_for(vault, "POST", "/v1/forms", business, body)
    tampered = body.replace(b"/done", b"/evil")
    assert send(vault, "POST", "/v1/forms", headers, tampered) == (401, REFUSAL)


def test_changed_path_method_or_business_is_refused(
    vault: LiveVault, business: uuid.UUID, other_business: uuid.UUID
) -> None:
    headers = headers_for(vault, "GET", "/v1/cards/card_a", business)
    assert send(vault, "GET", "/v1/cards/card_b", headers) == (401, REFUSAL)
    headers = headers_for(vault, "GET", "/v1/cards/card_a", business)
    assert send(vault, "DELETE", "/v1/cards/card_a", headers) == (401, REFUSAL)
    headers = headers_for(vault, "GET", "/v1/cards/card_a", business)
    headers["Custodia-Business"] = str(other_business)
    assert send(vault, "GET", "/v1/cards/card_a", headers) == (401, REFUSAL)
    headers = headers_for(vault, "GET", "/v1/cards/card_a", business)
    assert send(vault, "GET", "/v1/cards/card_a?x=1", headers) == (401, REFUSAL)


def test_changed_idempotency_key_is_refused(vault: LiveVault, business: uuid.UUID) -> None:
    body = json.dumps({"amount": 100}).encode()
    path = "/v1/charges/ch_unknown/refunds"
    headers = headers_for(vault, "POST", path, business, body, key="first")
    headers["Idempotency-Key"] = "second"
    assert send(vault, "POST", path, headers, body) == (401, REFUSAL)


@pytest.mark.parametrize("minutes", [-6, 6])
def test_old_or_future_timestamps_are_refused(
    vault: LiveVault, business: uuid.UUID, minutes: int
) -> None:
    body = form_body(vault, business)
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    payload = signed_payload("POST", "/v1/forms", str(business), "", body)
    message_id = f"msg_{uuid.uuid4().hex}"
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(vault.secret.encode()).sign(message_id, moment, payload),
        "Custodia-Business": str(business),
    }
    assert send(vault, "POST", "/v1/forms", headers, body) == (401, REFUSAL)


def test_a_replayed_request_is_refused(vault: LiveVault, business: uuid.UUID) -> None:
    body = form_body(vault, business)
    headers = headers_for(vault, "POST", "/v1/forms", business, body)
    assert send(vault, "POST", "/v1/forms", headers, body)[0] == 201
    # Again, and again (the vault runs two workers: the nonce is refused by either).
    for _ in range(3):
        assert send(vault, "POST", "/v1/forms", headers, body) == (401, REFUSAL)


def test_a_malformed_business_is_refused_like_a_bad_signature(vault: LiveVault) -> None:
    client = vault.client()
    headers = client.signed_headers("GET", "/v1/cards/card_a", "not-a-uuid", "", b"")
    assert send(vault, "GET", "/v1/cards/card_a", headers) == (401, REFUSAL)


def test_a_fractional_timestamp_is_read_not_a_500(vault: LiveVault, business: uuid.UUID) -> None:
    body = form_body(vault, business)
    moment = dt.datetime.now(dt.UTC)
    payload = signed_payload("POST", "/v1/forms", str(business), "", body)
    message_id = f"msg_{uuid.uuid4().hex}"
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": f"{moment.timestamp():.3f}",
        "webhook-signature": Webhook(vault.secret.encode()).sign(message_id, moment, payload),
        "Custodia-Business": str(business),
    }
    assert send(vault, "POST", "/v1/forms", headers, body)[0] == 201
    headers["webhook-timestamp"] = "soon"
    assert send(vault, "POST", "/v1/forms", headers, body) == (401, REFUSAL)
