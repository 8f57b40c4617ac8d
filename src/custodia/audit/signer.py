"""A checkpoint signer on another host: `custodia audit signer serve`, and the client the web tier
and the worker use when `CUSTODIA_AUDIT_SIGNER=remote`.

The signer host holds the private key; the others hold only the ring of public keys
(audit/keys.py) and a shared secret. A request is `POST /sign` with the JSON `{"statement": ...}`,
authenticated by an HMAC-SHA256 of the timestamp and the body under the shared secret
(headers `X-Custodia-Timestamp`, `X-Custodia-Signature`; 60 seconds of clock skew at most). The
signer signs only well-formed checkpoint statements, and the client checks the signature against
its own ring before a checkpoint is stored (chain.make_checkpoint), so a signer with an unknown
key is refused. Serve it on loopback or behind TLS: the statement is no secret, the HMAC keeps
others from having things signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodia.audit import keys
from custodia.core.config import generated_secret

logger = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 60
MAX_BODY = 64 * 1024
TIMEOUT_SECONDS = 10
STATEMENT_FIELDS = {"v", "tenant", "made_at", "reason", "previous", "heads"}


def _mac(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _read_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError:
        raise keys.KeyProblem(f"The audit signer's shared secret {path} cannot be read.") from None
    if len(secret) < 32:
        raise keys.KeyProblem(f"The audit signer's shared secret {path} is shorter than 32 bytes.")
    return secret


class RemoteSigner:
    """Asks the signer at `url` to sign."""

    def __init__(self, url: str, secret_file: Path) -> None:
        self.url = url.rstrip("/") + "/sign"
        self.secret_file = secret_file

    def sign(self, statement: str) -> tuple[str, bytes]:
        """The signer's key id and signature of `statement`."""
        secret = _read_secret(self.secret_file)
        body = json.dumps({"statement": statement}).encode()
        timestamp = str(int(time.time()))
        request = urllib.request.Request(  # noqa: S310 (an http(s) URL, checked in settings)
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Custodia-Timestamp": timestamp,
                "X-Custodia-Signature": _mac(secret, timestamp, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
                reply = json.loads(answer.read(MAX_BODY))
            return str(reply["key_id"]), bytes.fromhex(str(reply["signature"]))
        except urllib.error.HTTPError as exc:
            raise keys.KeyProblem(f"The audit signer refused to sign: HTTP {exc.code}.") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise keys.KeyProblem(
                f"The audit signer at {urllib.parse.urlsplit(self.url).hostname} did not sign:"
                f" {type(exc).__name__}."
            ) from None


def valid_statement(statement: object) -> bool:
    """A checkpoint statement as chain.make_checkpoint writes it (nothing else is signed)."""
    if not isinstance(statement, str):
        return False
    try:
        body = json.loads(statement)
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and set(body) == STATEMENT_FIELDS
        and body["v"] == 1
        and isinstance(body["heads"], list)
    )


class _Handler(BaseHTTPRequestHandler):
    server_version = "custodia-audit-signer"
    timeout = 10  # seconds a slow client may hold a connection
    secret: bytes = b""
    key: Ed25519PrivateKey

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        if self.path != "/sign":
            self._answer(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        declared = self.headers.get("Content-Length") or "0"
        length = int(declared) if declared.isdigit() else 0
        if not 0 < length <= MAX_BODY:
            self._answer(HTTPStatus.BAD_REQUEST, {"error": "a body of at most 64 KiB"})
            return
        body = self.rfile.read(length)
        timestamp = self.headers.get("X-Custodia-Timestamp", "")
        given = self.headers.get("X-Custodia-Signature", "")
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= MAX_SKEW_SECONDS
        expected = _mac(self.secret, timestamp, body).encode()
        if not fresh or not hmac.compare_digest(given.encode("utf-8", "replace"), expected):
            logger.warning("audit signer: refused an unauthenticated request")
            self._answer(HTTPStatus.UNAUTHORIZED, {"error": "not authenticated"})
            return
        try:
            statement = json.loads(body).get("statement")
        except (ValueError, AttributeError):
            statement = None
        if not valid_statement(statement):
            self._answer(HTTPStatus.BAD_REQUEST, {"error": "not a checkpoint statement"})
            return
        signed_by = keys.key_id(self.key.public_key())
        signature = self.key.sign(statement.encode())
        logger.info("audit signer: signed a checkpoint with key %s", signed_by)
        self._answer(HTTPStatus.OK, {"key_id": signed_by, "signature": signature.hex()})

    def _answer(self, status: HTTPStatus, payload: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        logger.debug("audit signer: " + format, *args)


def signer_server(host: str, port: int, secret_file: Path) -> ThreadingHTTPServer:
    """The signer with this host's current key, bound (call serve_forever; restart it after a
    rotation); the shared secret is made (0600) if missing."""
    secret = generated_secret(secret_file).encode()
    key = keys.signing_key()
    handler = type("SignerHandler", (_Handler,), {"secret": secret, "key": key})
    return ThreadingHTTPServer((host, port), handler)
