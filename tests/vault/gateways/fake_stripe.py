"""A local HTTP server that answers like Stripe's API for the endpoints the adapter uses.

Its answers are built from recorded response shapes (recorded/*.json: Stripe's objects as its
OpenAPI fixtures show them, and its documented error bodies), filled in per request. It decides by
Stripe's documented test cards, keeps Stripe's idempotency (the same `Idempotency-Key` with the
same parameters replays the first answer, with other parameters is a 400), checks the bearer key
(401), and records every request it received. A test can make it hang (before or after acting)
to time the client out, and make it echo the card number in its error messages
(`echo_card_number` in declines, `refuse_card_echoing_it` in a 400), as a careless API would.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RECORDED = Path(__file__).parent / "recorded"
API_KEY = "sk_test_custodiaFake0000000000000000"

# Stripe's documented test cards (https://docs.stripe.com/testing) and what each does.
APPROVED = "4242424242424242"
DECLINES = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": (
        "card_declined", "insufficient_funds", "Your card has insufficient funds."
    ),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": (
        "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."
    ),
}
# Insufficient funds moves no money in a card check: a SetupIntent with that card succeeds.
SETUP_SUCCEEDS = {"4000000000009995"}
AUTHENTICATION_REQUIRED = "4000002500003155"
# The parameters each endpoint takes here (Stripe answers any other with a 400), "metadata[...]"
# standing for every metadata key; a rename in Stripe's API (e.g. 2026's
# `allowed_payment_method_types`) shows up as a refusal, as it would against Stripe.
PARAMETERS = {
    "/v1/payment_methods": {
        "type", "card[number]", "card[exp_month]", "card[exp_year]", "card[cvc]",
        "billing_details[name]",
    },
    "/v1/payment_intents": {
        "amount", "currency", "payment_method", "confirm", "allowed_payment_method_types[0]",
        "metadata[...]",
    },
    "/v1/setup_intents": {
        "payment_method", "confirm", "allowed_payment_method_types[0]", "usage", "metadata[...]",
    },
    "/v1/refunds": {"payment_intent", "amount", "metadata[...]"},
}
SEARCH_BY_KEY = re.compile(r"metadata\['idempotency_key'\]:'([^']*)'")


def recorded(name: str) -> dict[str, Any]:
    """A fresh copy of a recorded response shape."""
    data: dict[str, Any] = json.loads((RECORDED / f"{name}.json").read_text())
    return data


def stripe_id(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "_" + "".join(secrets.choice(alphabet) for _ in range(24))


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class Hang:
    path: str
    seconds: float
    after_acting: bool


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class StripeState:
    """What the fake Stripe holds: its objects, its idempotency records, what it received."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.cards: dict[str, tuple[str, str | None]] = {}  # PaymentMethod id -> number, cvc
        self.payment_methods: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.setup_intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[str, tuple[tuple[str, str, tuple[tuple[str, str], ...]], Answer]] = {}
        self.hangs: list[Hang] = []
        self.failures: list[str] = []  # paths whose next POST gets a 500
        self.echo_card_number = False
        self.refuse_card_echoing_it = False
        self.release = threading.Event()

    # --- requests ---------------------------------------------------------------------------

    def answer(self, method: str, path: str, params: dict[str, str]) -> Answer:
        if method == "POST":
            return self.post(path, params)
        return self.get(path, params)

    def post(self, path: str, params: dict[str, str]) -> Answer:
        known = PARAMETERS.get(path, set())
        for name in params:
            if re.sub(r"^metadata\[.*\]$", "metadata[...]", name) not in known:
                return self.invalid(
                    name, "parameter_unknown", f"Received unknown parameter: {name}"
                )
        if path == "/v1/payment_methods":
            return self.create_payment_method(params)
        if path == "/v1/payment_intents":
            return self.create_intent(params, setup=False)
        if path == "/v1/setup_intents":
            return self.create_intent(params, setup=True)
        if path == "/v1/refunds":
            return self.create_refund(params)
        return self.missing_route(path)

    def get(self, path: str, params: dict[str, str]) -> Answer:
        if path == "/v1/payment_intents/search":
            match = SEARCH_BY_KEY.fullmatch(params.get("query", ""))
            if match is None:
                return self.invalid("query", "search_query_invalid", "Invalid search query.")
            found = [
                intent
                for intent in self.payment_intents.values()
                if intent["metadata"].get("idempotency_key") == match.group(1)
            ]
            body = recorded("search_result")
            body["data"] = found[: int(params.get("limit", "10"))]
            return Answer(200, body)
        if path in ("/v1/setup_intents", "/v1/refunds"):
            store = self.setup_intents if path == "/v1/setup_intents" else self.refunds
            newest = sorted(store.values(), key=lambda item: item["created"], reverse=True)
            body = recorded("list")
            body["url"] = path
            body["data"] = newest[: int(params.get("limit", "10"))]
            body["has_more"] = len(newest) > len(body["data"])
            return Answer(200, body)
        if path.startswith("/v1/payment_intents/"):
            intent_id = path.rsplit("/", 1)[1]
            if intent_id not in self.payment_intents:
                return self.no_such("payment_intent", intent_id, status=404)
            return Answer(200, self.payment_intents[intent_id])
        return self.missing_route(path)

    # --- objects ----------------------------------------------------------------------------

    def create_payment_method(self, params: dict[str, str]) -> Answer:
        number = params.get("card[number]", "")
        if self.refuse_card_echoing_it:
            return self.invalid(
                "card[number]", "parameter_invalid_string", f"Invalid card number: {number}"
            )
        if not luhn_valid(number):
            message = "Your card number is incorrect."
            return self.card_error("incorrect_number", None, message, number)
        method = recorded("payment_method")
        method.update(id=stripe_id("pm"), created=int(time.time()), metadata={}, customer=None)
        method["billing_details"].update(
            name=params.get("billing_details[name]"), email=None, phone=None
        )
        method["billing_details"]["address"] = dict.fromkeys(method["billing_details"]["address"])
        method["card"].update(
            last4=number[-4:],
            exp_month=int(params.get("card[exp_month]", "0")),
            exp_year=int(params.get("card[exp_year]", "0")),
            wallet=None,
            generated_from=None,
        )
        method["card"]["checks"]["cvc_check"] = (
            "unchecked" if params.get("card[cvc]") else None
        )
        self.payment_methods[method["id"]] = method
        self.cards[method["id"]] = (number, params.get("card[cvc]"))
        return Answer(200, method)

    def create_intent(self, params: dict[str, str], *, setup: bool) -> Answer:
        method_id = params.get("payment_method", "")
        if method_id not in self.cards:
            return self.no_such("payment_method", method_id)
        if not setup and not params.get("amount", "").isdigit():
            return self.invalid(
                "amount", "parameter_invalid_integer", f"Invalid integer: {params.get('amount')}"
            )
        number, _cvc = self.cards[method_id]
        intent = recorded("setup_intent" if setup else "payment_intent")
        prefix = "seti" if setup else "pi"
        intent_id = stripe_id(prefix)
        intent.update(
            id=intent_id,
            client_secret=f"{intent_id}_secret_{secrets.token_hex(12)}",
            created=int(time.time()),
            payment_method=method_id,
            metadata=self.metadata(params),
            next_action=None,
            payment_method_configuration_details=None,
            canceled_at=None,
        )
        if setup:
            intent.update(last_setup_error=None, usage=params.get("usage", "off_session"))
        else:
            intent.update(
                amount=int(params["amount"]),
                currency=params.get("currency"),
                last_payment_error=None,
                latest_charge=None,
                amount_received=0,
                transfer_data=None,
                processing=None,
                automatic_payment_methods=None,
            )
        store = self.setup_intents if setup else self.payment_intents
        store[intent_id] = intent
        if params.get("confirm") != "true":
            intent["status"] = "requires_confirmation"
            return Answer(200, intent)
        declined = DECLINES.get(number)
        if declined and not (setup and number in SETUP_SUCCEEDS):
            code, decline_code, message = declined
            error = {"type": "card_error", "code": code, "decline_code": decline_code,
                     "message": message, "doc_url": f"https://stripe.com/docs/error-codes/{code}"}
            intent["status"] = "requires_payment_method"
            if setup:
                intent["last_setup_error"] = error
            else:
                intent["last_payment_error"] = error
                intent["latest_charge"] = stripe_id("ch")
            answer = self.card_error(code, decline_code, message, number)
            answer.body["error"]["setup_intent" if setup else "payment_intent"] = intent
            answer.body["error"]["payment_method"] = self.payment_methods[method_id]
            answer.body["error"]["charge"] = None if setup else intent["latest_charge"]
            return answer
        if number == AUTHENTICATION_REQUIRED:
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {}}
            return Answer(200, intent)
        intent["status"] = "succeeded"
        if not setup:
            intent["latest_charge"] = stripe_id("ch")
            intent["amount_received"] = intent["amount"]
        return Answer(200, intent)

    def create_refund(self, params: dict[str, str]) -> Answer:
        intent_id = params.get("payment_intent", "")
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            return self.no_such("payment_intent", intent_id)
        already = sum(
            refund["amount"]
            for refund in self.refunds.values()
            if refund["payment_intent"] == intent_id
        )
        remaining = intent["amount_received"] - already
        amount = int(params.get("amount", str(remaining)))
        if intent["status"] != "succeeded" or remaining == 0:
            return self.invalid(
                None,
                "charge_already_refunded",
                f"Charge {intent['latest_charge']} has already been refunded.",
            )
        if amount > remaining:
            return self.invalid(
                "amount",
                "amount_too_large",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
            )
        refund = recorded("refund")
        refund.update(
            id=stripe_id("re"),
            amount=amount,
            charge=intent["latest_charge"],
            payment_intent=intent_id,
            currency=intent["currency"],
            created=time.time(),  # a float, so that refunds made in one second keep their order
            metadata=self.metadata(params),
            status="succeeded",
        )
        self.refunds[refund["id"]] = refund
        return Answer(200, refund)

    # --- answers ----------------------------------------------------------------------------

    def metadata(self, params: dict[str, str]) -> dict[str, str]:
        return {
            key[len("metadata[") : -1]: value
            for key, value in params.items()
            if key.startswith("metadata[") and key.endswith("]")
        }

    def card_error(
        self, code: str, decline_code: str | None, message: str, number: str
    ) -> Answer:
        body = recorded("error_card_declined")
        if self.echo_card_number:
            message = f"{message} (card {number})"
        body["error"].update(code=code, decline_code=decline_code, message=message)
        body["error"]["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        return Answer(402, body)

    def invalid(self, param: str | None, code: str, message: str) -> Answer:
        body = recorded("error_invalid_request")
        body["error"].update(code=code, message=message, param=param)
        body["error"]["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        return Answer(400, body)

    def no_such(self, kind: str, object_id: str, *, status: int = 400) -> Answer:
        """A missing object: 404 when it is the one asked for, 400 when a parameter names it."""
        answer = self.invalid(kind, "resource_missing", f"No such {kind}: '{object_id}'")
        answer.status = status
        return answer

    def missing_route(self, path: str) -> Answer:
        return self.invalid(None, "resource_missing", f"Unrecognized request URL (POST: {path}).")


class Handler(BaseHTTPRequestHandler):
    server: FakeStripeServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.handle_request("GET")

    def do_POST(self) -> None:  # noqa: N802
        self.handle_request("POST")

    def handle_request(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(body if method == "POST" else url.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        with state.lock:
            state.received.append(Received(method, url.path, params, headers))
            hang = next((h for h in state.hangs if h.path == url.path and method == "POST"), None)
            if hang is not None:
                state.hangs.remove(hang)
        if hang is not None and not hang.after_acting:
            state.release.wait(hang.seconds)
            self.close_connection = True
            return
        answer = self.answer(method, url.path, params, headers)
        if hang is not None:
            state.release.wait(hang.seconds)
        self.send(answer)

    def answer(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Answer:
        state = self.server.state
        if headers.get("authorization") != f"Bearer {state.api_key}":
            return Answer(401, recorded("error_invalid_api_key"))
        key = headers.get("idempotency-key")
        fingerprint = (method, path, tuple(sorted(params.items())))
        with state.lock:
            if key is not None and key in state.idempotent:
                first, answer = state.idempotent[key]
                if first != fingerprint:
                    return Answer(400, recorded("error_idempotency"))
                replay = copy.deepcopy(answer)
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            if method == "POST" and path in state.failures:
                state.failures.remove(path)
                # Stripe keeps a 500 under its idempotency key too (it began executing).
                answer = Answer(500, recorded("error_api"))
            else:
                answer = state.answer(method, path, params)
            answer = Answer(answer.status, copy.deepcopy(answer.body))
            if key is not None and method == "POST":
                state.idempotent[key] = (fingerprint, copy.deepcopy(answer))
            return answer

    def send(self, answer: Answer) -> None:
        payload = json.dumps(answer.body).encode()
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", stripe_id("req"))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a timeout test)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        """Quiet: the tests read `received` instead."""


class FakeStripeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api_key: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = StripeState(api_key)


class FakeStripe:
    """The fake Stripe API on a local port, served from a thread."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.server = FakeStripeServer(api_key)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def state(self) -> StripeState:
        return self.server.state

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    def posts(self, path: str) -> list[Received]:
        return [r for r in self.received if r.method == "POST" and r.path == path]

    def hang(self, path: str, seconds: float, *, after_acting: bool) -> None:
        """The next POST to `path` gets no answer for `seconds`; with `after_acting` the
        operation happens first (a late success), without it never."""
        with self.state.lock:
            self.state.hangs.append(Hang(path, seconds, after_acting))

    def fail(self, path: str) -> None:
        """The next POST to `path` gets a 500 (an `api_error`) without acting."""
        with self.state.lock:
            self.state.failures.append(path)

    def start(self) -> FakeStripe:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.state.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
