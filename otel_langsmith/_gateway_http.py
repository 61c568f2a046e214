"""The gateway's HTTP server: OTLP/HTTP's ``POST /v1/traces``, ``GET /healthz`` and ``GET /readyz``.

Bounded whatever the senders do: connections beyond the limit are answered 503 at once, a body
is never read beyond the limit (413), and a request must arrive whole in time: its headers within
``_IDLE`` seconds of the connection opening or of the previous answer, its body within ``_BODY``
seconds of its headers (a sender trickling a byte a second would otherwise hold its connection,
and its thread, for ever). Stopping refuses new connections, lets requests whose headers came
finish, and closes the others, so :meth:`GatewayServer.stop` returns promptly.
"""

from __future__ import annotations

import enum
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

# Seconds a connection may wait for a request's headers, and a request's body may take.
_IDLE = 30.0
_BODY = 120.0
# Seconds a refused body is read and discarded before its connection closes.
_LINGER = 2.0
# The most of a GET's body read to keep its connection in step; a larger one closes it.
_SMALL_BODY = 1 << 16
_TRACES = "/v1/traces"
_NOT_FOUND = b'{"code":5,"message":"not found: POST /v1/traces, GET /healthz, GET /readyz"}'


class _State(enum.Enum):
    WAITING = "waiting for a request's headers"
    READING = "reading a request's body"
    BUSY = "answering"


class GatewayServer(ThreadingHTTPServer):
    """Serves ``gateway`` on (host, port) from :meth:`start` until :meth:`stop`; port 0 picks one."""

    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: a burst of senders connecting at once is accepted, not left to TCP's
    # retransmission (a second, then three...).
    request_queue_size = 128

    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        self.gateway = gateway
        self._lock = threading.Condition(threading.Lock())
        # Connection socket -> what it is doing, since when (time.monotonic()).
        self._connections: dict[socket.socket, tuple[_State, float]] = {}
        self._stopping = threading.Event()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> GatewayServer:
        for target, name in ((self.serve_forever, "otel-langsmith-gateway"), (self._watch, "otel-langsmith-watch")):
            threading.Thread(target=target, name=name, daemon=True).start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """No new connection; requests whose headers came finish (within ``timeout``); the other
        connections close."""
        with self._lock:
            self._stopping.set()
            waiting = [c for c, (state, _) in self._connections.items() if state is _State.WAITING]
        self.shutdown()
        self.server_close()
        for connection in waiting:
            _shut(connection)
        with self._lock:
            self._lock.wait_for(lambda: not self._connections, timeout)

    # -- connections ----------------------------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = len(self._connections) >= self.gateway.limits.max_connections or self._stopping.is_set()
            if not full:
                self._connections[request] = (_State.WAITING, time.monotonic())
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

    def mark(self, connection: socket.socket, state: _State) -> bool:
        """Note what ``connection`` is doing from now; False when stopping (then it closes after
        its answer)."""
        with self._lock:
            if connection in self._connections:
                self._connections[connection] = (state, time.monotonic())
            return not self._stopping.is_set()

    def _watch(self) -> None:
        """Close the connections whose request does not come whole in time."""
        limits = {_State.WAITING: _IDLE, _State.READING: _BODY}
        while not self._stopping.wait(1.0):
            now = time.monotonic()
            with self._lock:
                late = [
                    connection
                    for connection, (state, since) in self._connections.items()
                    if now - since > limits.get(state, float("inf"))
                ]
            for connection in late:
                _shut(connection)


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


def _utf8(value: str) -> str:
    """A header value as the sender wrote it: http.server reads headers as ISO-8859-1, OTLP
    senders write UTF-8 (a project named in any language)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


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
        self.server.mark(self.connection, _State.READING)
        path = self.path.split("?", 1)[0]
        skipped = self._skip_body()
        self.server.mark(self.connection, _State.BUSY)
        if not skipped:
            reply = Reply(400, b'{"code":3,"message":"a GET carries no body"}')
        elif path == "/healthz":
            reply = Reply(200, b'{"status":"alive"}')
        elif path == "/readyz":
            ready, why = self.server.gateway.ready()
            reply = Reply(
                200 if ready else 503, orjson.dumps({"status": "ready" if ready else "not ready", "reason": why})
            )
        else:
            reply = Reply(404, _NOT_FOUND)
        self._send(reply)

    def do_POST(self) -> None:
        self.server.mark(self.connection, _State.READING)
        gateway = self.server.gateway
        if self.path.split("?", 1)[0] != _TRACES:
            self._refuse(Reply(404, _NOT_FOUND))
            return
        headers = {name.lower(): _utf8(value) for name, value in self.headers.items()}
        refused = gateway.refusal(headers)
        if refused is not None:
            self._refuse(refused)
            return
        try:
            body = self._body(gateway.limits.max_body_bytes)
        except _BodyError as exc:
            self._refuse(gateway.error(headers.get("content-type", ""), exc.status, str(exc)))
            return
        self.server.mark(self.connection, _State.BUSY)
        try:
            reply = gateway.traces(headers, body)
        except Exception:
            logger.exception("The gateway failed on a request; answered 500")
            reply = gateway.error(headers.get("content-type", ""), 500, "the gateway failed on this request")
        self._send(reply)

    def _not_allowed(self) -> None:
        self._refuse(
            Reply(
                405,
                b'{"code":12,"message":"only POST /v1/traces, GET /healthz, GET /readyz"}',
                headers={"Allow": "GET, POST"},
            )
        )

    def __getattr__(self, name: str) -> Any:
        # http.server looks up do_<METHOD>: every method but GET and POST is 405 (501 and an HTML
        # page otherwise, a 5xx that senders retry).
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    # -- bodies ---------------------------------------------------------------------------------

    def _length(self) -> int | None:
        """The Content-Length, None without one; one that is not a single number is refused (two
        that differ would be read one way here and another by a proxy in front)."""
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return None
        value = values[0].strip()
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if len(set(values)) != 1 or not (value.isascii() and value.isdigit()):
            raise _BodyError(400, "Content-Length is not one number")
        # Past 18 digits it exceeds any limit (and int() refuses thousands of digits).
        return int(value) if len(value) <= 18 else 1 << 62

    def _skip_body(self) -> bool:
        """Read and drop a small body so the connection stays in step; False (and the connection
        closes after the answer) when it is not small."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self._chunked(_SMALL_BODY)
                return True
            length = self._length() or 0
        except _BodyError:
            length = _SMALL_BODY + 1
        if length > _SMALL_BODY:
            self.close_connection = True
            return False
        self.rfile.read(length)
        return True

    def _body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked(limit)
        length = self._length() or 0
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
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            if not line or any(c not in b"0123456789abcdefABCDEF" for c in line):
                raise _BodyError(400, "a chunk's size is not hex")
            chunk = int(line, 16)
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

    # -- answers --------------------------------------------------------------------------------

    def _refuse(self, reply: Reply) -> None:
        """Answer without reading the body, then close. What the sender still sends is read and
        discarded for a moment first: a socket closed with unread data resets the connection, and
        some senders' systems (Windows among them) discard an answer not yet read on a reset."""
        self.close_connection = True
        self._send(reply)
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _LINGER
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(1 << 16):
                    break
        except OSError:
            pass  # the sender closed, reset or went silent: done either way

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if not self.server.mark(self.connection, _State.WAITING) or self.close_connection:
                self.close_connection = True
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True  # the sender left before its answer
