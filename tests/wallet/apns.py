"""A local server that answers like Apple's push service (APNs), for the APNs adapter's tests.

It speaks HTTP/2 only (the `h2` package, which httpx's http2 extra brings) over TLS with a
certificate of a local CA, and requires a client certificate issued by the CA it is given (the
wallet's development pass-signing CA). It records what it received and answers each push token
as told: 200 by default, or a status and APNs reason; it can also wait before answering.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    protocol: str  # what ALPN agreed: "h2"
    client_subject: str  # the client certificate's subject, as ssl reports it


@dataclass
class FakeApns:
    """An APNs stand-in on 127.0.0.1, a free port; `answers` maps a token to (status, reason)."""

    certificate: Path
    key: Path
    client_ca: Path
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    refused_handshakes: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self._tls.load_cert_chain(self.certificate, self.key)
        self._tls.verify_mode = ssl.CERT_REQUIRED
        self._tls.load_verify_locations(self.client_ca)
        self._tls.set_alpn_protocols(["h2"])
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self._tls.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.refused_handshakes += 1
            raw.close()
            return
        with tls:
            protocol = tls.selected_alpn_protocol() or ""
            if protocol != "h2":
                return
            peer = tls.getpeercert() or {}
            subject = ", ".join(
                f"{attribute[0]}={attribute[1]}"
                for rdn in peer.get("subject", ())
                for attribute in rdn
            )
            self._speak_h2(tls, protocol, subject)

    def _speak_h2(self, tls: ssl.SSLSocket, protocol: str, subject: str) -> None:
        connection = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        connection.initiate_connection()
        tls.sendall(connection.data_to_send())
        heads: dict[int, dict[str, str]] = {}
        bodies: dict[int, bytearray] = {}
        while not self._stopped.is_set():
            try:
                data = tls.recv(65535)
            except OSError:
                return
            if not data:
                return
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    heads[event.stream_id] = {
                        str(name): str(value) for name, value in event.headers or []
                    }
                    bodies[event.stream_id] = bytearray()
                elif isinstance(event, h2.events.DataReceived):
                    bodies[event.stream_id] += event.data or b""
                    connection.acknowledge_received_data(
                        event.flow_controlled_length or 0, event.stream_id
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    stream = event.stream_id
                    self._answer(connection, stream, heads[stream], bytes(bodies[stream]))
                    with self._lock:
                        self.received.append(
                            Received(
                                method=heads[stream][":method"],
                                path=heads[stream][":path"],
                                headers=heads[stream],
                                body=bytes(bodies[stream]),
                                protocol=protocol,
                                client_subject=subject,
                            )
                        )
                elif isinstance(event, h2.events.ConnectionTerminated):
                    tls.sendall(connection.data_to_send())
                    return
            try:
                tls.sendall(connection.data_to_send())
            except OSError:
                return

    def _answer(
        self,
        connection: h2.connection.H2Connection,
        stream: int,
        head: dict[str, str],
        body: bytes,
    ) -> None:
        if self.delay:
            time.sleep(self.delay)
        token = head[":path"].rsplit("/", 1)[-1]
        status, reason = self.answers.get(token, (200, ""))
        payload = b"" if status == 200 else json.dumps({"reason": reason}).encode()
        connection.send_headers(
            stream,
            [
                (":status", str(status)),
                ("apns-id", str(uuid.uuid4()).upper()),
                ("content-length", str(len(payload))),
            ],
            end_stream=not payload,
        )
        if payload:
            connection.send_data(stream, payload, end_stream=True)
