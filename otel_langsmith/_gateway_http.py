"""The gateway's HTTP server: OTLP/HTTP's ``POST /v1/traces``, ``GET /healthz`` and ``GET /readyz``.

Bounded whatever the senders do: connections beyond the limit are answered 503 at once, a body
is never read beyond the limit (413), a connection that sends nothing for ``_IDLE`` seconds is
closed. Stopping refuses new connections, lets requests in progress finish, and closes idle
keep-alive connections, so :meth:`GatewayServer.stop` returns promptly.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from ._gateway import Gateway, Reply
from ._version import __version__

logger = logging.getLogger(__name__)

# Seconds a connection may stay silent (between requests, or within one).
_IDLE = 30.0
# Seconds a refused body is read and discarded before its connection closes.
_LINGER = 2.0
_TRACES = "/v1/traces"


class GatewayServer(ThreadingHTTPServer):
    """Serves ``gateway`` on (host, port) from :meth:`start` until :meth:`stop`; port 0 picks one."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        self.gateway = gateway
        self._lock = threading.Condition(threading.Lock())
        # Connection socket -> whether a request on it is in progress.
        self._connections: dict[socket.socket, bool] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> GatewayServer:
        self._thread = threading.Thread(target=self.serve_forever, name="otel-langsmith-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """No new connection; requests in progress finish (within ``timeout``); idle ones close."""
        with self._lock:
            self._stopping = True
            idle = [connection for connection, busy in self._connections.items() if not busy]
        self.shutdown()
        self.server_close()
        for connection in idle:
            _shut(connection)
        with self._lock:
            self._lock.wait_for(lambda: not self._connections, timeout)

    # -- connections ----------------------------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = len(self._connections) >= self.gateway.limits.max_connections or self._stopping
            if not full:
                self._connections[request] = False
        if full:
            _busy(request, self.gateway.limits.retry_after)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def close_request(self, request: Any) -> None:
        with self._lock:
            self._connections.pop(request, None)
            self._lock.notify_all()
        super().close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender that resets its connection mid-request: socketserver would print a traceback.
        logger.debug("A request from %s ended in an error", client_address, exc_info=True)

    def mark(self, connection: socket.socket, busy: bool) -> bool:
        """Note whether a request is in progress on ``connection``; False when stopping."""
        with self._lock:
            if connection in self._connections:
                self._connections[connection] = busy
            return not self._stopping


def _busy(connection: socket.socket, retry_after: int) -> None:
    body = b'{"code":14,"message":"the gateway is at its connection limit; retry later"}'
    head = (
        f"HTTP/1.1 503 Service Unavailable\r\nRetry-After: {retry_after}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    try:
        connection.settimeout(1.0)
        connection.sendall(head.encode() + body)
    except OSError:
        pass  # the sender left: nothing to tell it


def _shut(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"otel-langsmith-gateway/{__version__}"
    timeout = _IDLE
    # Headers and body are two writes: without this, a keep-alive sender waits out a delayed ACK.
    disable_nagle_algorithm = True
    server: GatewayServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self.server.mark(self.connection, True)
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(Reply(200, b'{"status":"alive"}'))
        elif path == "/readyz":
            ready, why = self.server.gateway.ready()
            body = orjson.dumps({"status": "ready" if ready else "not ready", "reason": why})
            self._send(Reply(200 if ready else 503, body))
        else:
            self._send(Reply(404, b'{"code":5,"message":"not found: POST /v1/traces, GET /healthz, GET /readyz"}'))

    def do_POST(self) -> None:
        self.server.mark(self.connection, True)
        gateway = self.server.gateway
        if self.path.split("?", 1)[0] != _TRACES:
            self._refuse(Reply(404, b'{"code":5,"message":"not found: OTLP traces go to POST /v1/traces"}'))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        refused = gateway.refusal(headers)
        if refused is not None:
            self._refuse(refused)
            return
        try:
            body = self._body(gateway.limits.max_body_bytes)
        except _BodyError as exc:
            self._refuse(gateway._error(headers.get("content-type", ""), exc.status, str(exc)))
            return
        try:
            reply = gateway.traces(headers, body)
        except Exception:
            logger.exception("The gateway failed on a request; answered 500")
            reply = gateway._error(headers.get("content-type", ""), 500, "the gateway failed on this request")
        self._send(reply)

    def _body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked(limit)
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise _BodyError(400, "Content-Length is not a number") from None
        if length < 0:
            raise _BodyError(400, "Content-Length is negative")
        if length > limit:
            raise _BodyError(413, f"the body is larger than {limit} bytes")
        body = self.rfile.read(length)
        if len(body) < length:
            raise _BodyError(400, "the body ended before its Content-Length")
        return body

    def _chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(400, "a chunk's size is not hex") from None
            if chunk == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(parts)
            size += chunk
            if size > limit:
                raise _BodyError(413, f"the body is larger than {limit} bytes")
            data = self.rfile.read(chunk)
            if len(data) < chunk:
                raise _BodyError(400, "the body ended inside a chunk")
            parts.append(data)
            self.rfile.readline(8)

    def _refuse(self, reply: Reply) -> None:
        """Answer without reading the body, then close. What the sender still sends is read and
        discarded for a moment first: a socket closed with unread data resets the connection, and
        some senders' systems (Windows among them) discard an answer not yet read on a reset."""
        self.close_connection = True
        self._send(reply)
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(_LINGER)
            deadline = time.monotonic() + _LINGER
            while time.monotonic() < deadline and self.connection.recv(1 << 16):
                pass
        except OSError:
            pass  # the sender closed, reset or went silent: done either way

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if not self.server.mark(self.connection, False) or self.close_connection:
                self.close_connection = True
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True  # the sender left before its answer
