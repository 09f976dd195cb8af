"""Real local receivers for the alarms' tests: an HTTP server (webhooks, and the robots' APIs pointed at it) and an
SMTP server (aiosmtpd), each on a free loopback port, recording what they receive."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    """One HTTP request: its path (with the query) and its JSON body."""

    path: str
    body: Any


@dataclass
class HttpReceiver:
    """An HTTP server on ``127.0.0.1`` that records POSTs; ``fail`` requests are answered 500 first (``-1``: all),
    and a request waits while ``hold`` is clear."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    fail: int = 0
    hold: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until ``count`` requests were answered (delivered or failed)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: self.attempts >= count, timeout)


@contextmanager
def http_receiver(*, fail: int = 0) -> Iterator[HttpReceiver]:
    """An :class:`HttpReceiver` serving in a thread for the block."""
    rec = HttpReceiver(fail=fail)
    rec.hold.set()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            rec.hold.wait(30)
            failing = rec.fail == -1 or rec.attempts < rec.fail
            if not failing:
                rec.received.append(Received(self.path, json.loads(raw.decode("utf-8"))))
            code = 500 if failing else 200
            reply = b'{"errcode": 1, "errmsg": "down"}' if failing else b'{"errcode": 0, "errmsg": "ok"}'
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
            with rec.arrived:
                rec.attempts += 1
                rec.arrived.notify_all()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.hold.set()
        server.shutdown()
        server.server_close()


@dataclass
class Mail:
    """One message the SMTP server accepted."""

    sender: str
    recipients: list[str]
    subject: str
    text: str


@dataclass
class SmtpReceiver:
    """An SMTP server (aiosmtpd) on ``127.0.0.1`` that records the messages it accepts."""

    port: int
    mails: list[Mail] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until ``count`` messages arrived."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.mails) >= count, timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """An :class:`SmtpReceiver` serving for the block (aiosmtpd's controller needs a port of its own: a free one)."""
    rec = SmtpReceiver(port=_free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            part = msg.get_body(preferencelist=("plain",))
            text = part.get_content() if part is not None else ""
            with rec.arrived:
                rec.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), str(msg["Subject"]), text))
                rec.arrived.notify_all()
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=rec.port)
    controller.start()
    try:
        yield rec
    finally:
        controller.stop()
