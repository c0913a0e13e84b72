"""Where calbook's notifications land during the benchmark: an SMTP sink and a webhook receiver.

Both stamp each arrival with the wall clock, which the benchmark compares with the moment it
confirmed the booking.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.controller import Controller

from bench.fakes.http import LoopServer, Reply, Request


@dataclass
class MailSink:
    """Arrivals by ``X-Calbook-Event-Id`` (the outbox event), with the recipients."""

    arrivals: list[tuple[float, str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        at = time.time()
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.arrivals.append((at, str(msg.get("X-Calbook-Event-Id", "")), list(envelope.rcpt_tos)))
        return "250 OK"

    def start(self) -> int:
        from bench.scale.layout import free_port

        port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()
        return port

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


@dataclass
class WebhookSink:
    """Deliveries: (arrival, event type, booking id, event id)."""

    arrivals: list[tuple[float, str, str, str]] = field(default_factory=list)
    server: LoopServer | None = None

    def handle(self, request: Request) -> Reply:
        at = time.time()
        try:
            body = json.loads(request.body)
            data = body.get("data") or {}
            booking = data.get("booking") or data  # {"data": {"booking": {...}}} for booking events
            self.arrivals.append((at, str(body.get("type")), str(booking.get("id")),
                                  request.headers.get("x-calbook-event-id", "")))
        except ValueError:
            return 400, {}, b""
        return 204, {}, b""

    def start(self) -> str:
        self.server = LoopServer(self.handle)
        return self.server.start() + "/hook"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
