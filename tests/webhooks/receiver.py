"""A real HTTPS server on localhost that receives webhooks, in a thread: it answers each POST
with the next of the answers it was given (a status, a redirect, or a pause longer than the
sender's timeout) and keeps what it received, for the test to verify."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    pause: float = 0.0
    location: str = ""


@dataclass
class Receiver:
    url: str
    server: ThreadingHTTPServer
    answers: list[Answer] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    got_request: threading.Event = field(default_factory=threading.Event)

    def answer(self, *answers: Answer | int) -> None:
        """Answer the next requests so (an int is a status); after them, 200."""
        self.answers.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_receiver(cert: Path, key: Path, host: str = "localhost") -> Receiver:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            receiver = holder["receiver"]
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            receiver.got_request.set()
            answer = receiver.answers.pop(0) if receiver.answers else Answer()
            if answer.pause:
                time.sleep(answer.pause)
            try:
                self.send_response(answer.status)
                if answer.location:
                    self.send_header("Location", answer.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender gave up waiting

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    receiver = Receiver(f"https://{host}:{port}/hooks/custodia", server)
    holder["receiver"] = receiver
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver
