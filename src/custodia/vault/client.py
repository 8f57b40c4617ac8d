"""The app's client of the vault: signed JSON requests over verified TLS.

The only module of `custodia.vault` the app imports (an import-linter contract). It imports the
standard library, `standardwebhooks` and `urllib3` only: nothing of the vault's models, views or
settings, so the app process never loads vault code.

Every request is signed (Standard Webhooks: HMAC-SHA256 over a unique id, a timestamp and a
payload) where the payload is `signed_payload(...)`: the method, the path with its query, the
business, the idempotency key and the raw body, so changing any of them breaks the signature.
The vault refuses a signature older or newer than 5 minutes and an id it has seen before.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import uuid
from dataclasses import dataclass
from typing import Any

import urllib3
from standardwebhooks import Webhook

BUSINESS_HEADER = "Custodia-Business"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def signed_payload(
    method: str, path: str, business: str, idempotency_key: str, body: bytes
) -> bytes:
    """What the signature covers besides its id and timestamp."""
    head = "\n".join([method.upper(), path, business, idempotency_key, ""])
    return head.encode() + body


def signer(secret: str) -> Webhook:
    """The Standard Webhooks signer/verifier for the shared secret (its bytes are the key)."""
    return Webhook(secret.encode())


class VaultError(Exception):
    """Something went wrong talking to the vault."""


class VaultUnavailable(VaultError):
    """The vault could not be reached, did not answer in time, or failed (5xx): try later."""


class VaultRefused(VaultError):
    """The vault answered no (4xx); `message` is its reason, `status` the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"the vault refused ({status}): {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class HostedForm:
    form_id: str
    form_url: str


@dataclass(frozen=True)
class CardInfo:
    """What the app may keep of a card: never the number."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    duplicate_of: str | None = None


@dataclass(frozen=True)
class ChargeResult:
    """A charge as the vault knows it; `status` is approved, declined, pending or unknown."""

    charge_id: str
    status: str
    amount: int
    currency: str
    refunded: int
    decline_code: str | None
    message: str
    gateway_reference: str | None


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    charge_id: str
    status: str
    amount: int
    decline_code: str | None
    message: str
    gateway_reference: str | None


class VaultClient:
    """Signed requests to the vault at `base_url` (https), trusting `ca_file` (else the system's
    CAs). One instance may be shared by threads."""

    def __init__(
        self,
        base_url: str,
        secret: str,
        *,
        ca_file: str | None = None,
        timeout_seconds: float = 30,
    ) -> None:
        if not base_url.startswith("https://"):
            raise ValueError("the vault URL must be https://")
        self.base_url = base_url.rstrip("/")
        self._webhook = signer(secret)
        context = ssl.create_default_context(cafile=ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._http = urllib3.PoolManager(
            ssl_context=context,
            timeout=urllib3.Timeout(connect=5, read=timeout_seconds),
            retries=False,
            maxsize=8,
        )

    # --- the endpoints (docs/payments.md, "Endpoints") ---------------------------------------

    def create_form(self, business_id: uuid.UUID | str, return_url: str) -> HostedForm:
        """A one-time hosted card form for the business, returning to `return_url`."""
        data = self.request(
            "POST",
            "/v1/forms",
            business_id,
            {"business_id": str(business_id), "return_url": return_url},
        )
        return HostedForm(form_id=data["form_id"], form_url=data["form_url"])

    def redeem_reference(self, business_id: uuid.UUID | str, ref: str) -> CardInfo:
        """The card the hosted form added, for the one-time reference it returned with."""
        return _card(self.request("POST", f"/v1/references/{_segment(ref)}/redeem", business_id))

    def get_card(self, business_id: uuid.UUID | str, token: str) -> CardInfo:
        return _card(self.request("GET", f"/v1/cards/{_segment(token)}", business_id))

    def delete_card(self, business_id: uuid.UUID | str, token: str) -> None:
        """The card's sealed number is destroyed; its token no longer charges."""
        self.request("DELETE", f"/v1/cards/{_segment(token)}", business_id)

    def charge(
        self,
        business_id: uuid.UUID | str,
        token: str,
        *,
        amount: int,
        currency: str,
        idempotency_key: str,
    ) -> ChargeResult:
        """Charge the card; the same key and body again returns the first answer (charged
        once). `status` unknown means the gateway did not answer: retry with the same key."""
        body = {
            "business_id": str(business_id),
            "token": token,
            "amount": amount,
            "currency": currency,
        }
        return _charge(
            self.request("POST", "/v1/charges", business_id, body, idempotency_key=idempotency_key)
        )

    def get_charge(self, business_id: uuid.UUID | str, charge_id: str) -> ChargeResult:
        return _charge(self.request("GET", f"/v1/charges/{_segment(charge_id)}", business_id))

    def refund(
        self, business_id: uuid.UUID | str, charge_id: str, *, amount: int, idempotency_key: str
    ) -> RefundResult:
        """Give back `amount` of the charge (never more than what is left of it)."""
        data = self.request(
            "POST",
            f"/v1/charges/{_segment(charge_id)}/refunds",
            business_id,
            {"amount": amount},
            idempotency_key=idempotency_key,
        )
        return RefundResult(
            refund_id=data["refund_id"],
            charge_id=data["charge_id"],
            status=data["status"],
            amount=data["amount"],
            decline_code=data.get("decline_code"),
            message=data.get("message", ""),
            gateway_reference=data.get("gateway_reference"),
        )

    def destroy_business(self, business_id: uuid.UUID | str) -> None:
        """Crypto-shred the business's cards (its vault key is destroyed); for good."""
        self.request("POST", f"/v1/businesses/{_segment(str(business_id))}/destroy", business_id)

    # --- the wire -------------------------------------------------------------------------

    def signed_headers(
        self, method: str, path: str, business: str, idempotency_key: str, body: bytes
    ) -> dict[str, str]:
        """The headers of one signed request (a fresh id and the current time)."""
        message_id = f"msg_{uuid.uuid4().hex}"
        now = dt.datetime.now(dt.UTC)
        payload = signed_payload(method, path, business, idempotency_key, body)
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._webhook.sign(message_id, now, payload),
            BUSINESS_HEADER: business,
            "Content-Type": "application/json",
        }
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        return headers

    def request(
        self,
        method: str,
        path: str,
        business_id: uuid.UUID | str,
        body: dict[str, Any] | None = None,
        *,
        idempotency_key: str = "",
    ) -> Any:
        """One signed request; the decoded JSON answer, or VaultRefused / VaultUnavailable."""
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = self.signed_headers(method, path, str(business_id), idempotency_key, raw)
        try:
            response = self._http.request(
                method, self.base_url + path, body=raw or None, headers=headers
            )
        except urllib3.exceptions.HTTPError as exc:
            raise VaultUnavailable(f"the vault cannot be reached: {type(exc).__name__}") from None
        try:
            data = json.loads(response.data) if response.data else {}
        except ValueError:
            data = {}
        if response.status >= 500:
            raise VaultUnavailable(f"the vault failed ({response.status})")
        if response.status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise VaultRefused(response.status, str(message or "refused"))
        return data


def _segment(value: str) -> str:
    """A path segment from an id; anything but the characters ids use is refused here."""
    if not value or not all(char.isalnum() or char in "_-" for char in value):
        raise VaultRefused(404, "no such object")
    return value


def _card(data: dict[str, Any]) -> CardInfo:
    return CardInfo(
        token=data["token"],
        brand=data["brand"],
        last4=data["last4"],
        exp_month=data["exp_month"],
        exp_year=data["exp_year"],
        fingerprint=data["fingerprint"],
        duplicate_of=data.get("duplicate_of"),
    )


def _charge(data: dict[str, Any]) -> ChargeResult:
    return ChargeResult(
        charge_id=data["charge_id"],
        status=data["status"],
        amount=data["amount"],
        currency=data["currency"],
        refunded=data.get("refunded", 0),
        decline_code=data.get("decline_code"),
        message=data.get("message", ""),
        gateway_reference=data.get("gateway_reference"),
    )
