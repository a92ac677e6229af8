"""A local HTTP server for tests: each path maps to a handler, every request is logged."""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A body is bytes, or chunks sent one by one (a generator may sleep between them); RESET
# among the chunks aborts the connection with a TCP reset.
RESET = object()
Body = bytes | Iterable[bytes | object]
Handler = Callable[["Request"], tuple[int, dict[str, str], Body]]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    hit: int  # 1 for the first request to this path


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that gave up (a fetch timed out, a worker was killed) is part of the tests.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class LocalSite:
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # Any 127.x.y.z address works on Linux loopback: several "hosts" on one machine.
    host: str = "127.0.0.1"
    headers_seen: dict[str, list[dict[str, str]]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        site = self
        self._lock = threading.Lock()

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body in one segment: no 40 ms delayed-ACK stall per response.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                with site._lock:
                    site.hits[self.path].append(time.monotonic())
                    site.headers_seen[self.path].append(dict(self.headers))
                    hit = len(site.hits[self.path])
                handler = site.routes.get(self.path)
                if handler is None:
                    status, headers, body = 404, {"Content-Type": "text/html"}, b"<h1>Not found</h1>"
                else:
                    status, headers, body = handler(Request(self.path, dict(self.headers), hit))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers and isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for chunk in [body] if isinstance(body, bytes) else body:
                        if chunk is RESET:
                            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                            self.connection.close()
                            self.close_connection = True
                            return
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.server = _QuietServer((self.host, 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.server.server_port}"

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def html(body: bytes | str, content_type: str = "text/html; charset=utf-8", status: int = 200,
         **headers: str) -> Handler:
    data = body.encode() if isinstance(body, str) else body
    return lambda _req: (status, {"Content-Type": content_type, **headers}, data)
