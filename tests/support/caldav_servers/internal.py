"""Stand-ins for what an SSRF would reach, and for a server that answers too slowly.

``InternalService`` listens on 127.0.0.2 - an address the tests' URL policy refuses (only
127.0.0.1 is allowed) - and records every request that reaches it, with its Authorization
header, answering each with a status line and body a port scanner would love to read back.
``Tarpit`` accepts a connection and sends its answer one byte at a time.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INTERNAL_HOST = "127.0.0.2"
SECRET_STATUS = 418
SECRET_BODY = b"internal-metadata-secret"


def assert_no_echo(text: str) -> None:
    """Nothing of the internal service's answer in ``text``: not its status (as a number of its
    own: a port such as 41847 in a URL is not the status line), its body or its reason phrase."""
    assert not re.search(rf"(?<!\d){SECRET_STATUS}(?!\d)", text), text
    assert SECRET_BODY.decode() not in text and "Teapot" not in text, text


@dataclass
class Hit:
    method: str
    path: str
    authorization: str | None


class InternalService:
    def __init__(self, port: int = 0) -> None:
        self.hits: list[Hit] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                service.hits.append(Hit(self.command, self.path, self.headers.get("Authorization")))
                self.send_response(SECRET_STATUS, "Internal Teapot")
                self.send_header("Content-Length", str(len(SECRET_BODY)))
                self.end_headers()
                self.wfile.write(SECRET_BODY)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = do_OPTIONS = do_POST = _any  # noqa: N815

        self.server = ThreadingHTTPServer((INTERNAL_HOST, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://{INTERNAL_HOST}:{self.port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Tarpit:
    """Answers every connection with a valid HTTP response, one byte every ``pause`` seconds."""

    def __init__(self, pause: float = 0.4) -> None:
        self.pause = pause
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        answer = b"HTTP/1.1 207 Multi-Status\r\nContent-Length: 1000000\r\n\r\n" + b" " * 1000
        try:
            conn.recv(65536)
            for byte in answer:
                if self._stop.is_set():
                    break
                conn.sendall(bytes([byte]))
                time.sleep(self.pause)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
