"""What the loopback fakes of provider HTTP APIs share: a request handler base, a server run in a thread."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

_Fake = TypeVar("_Fake", bound="FakeAPI")


class FakeHandler(BaseHTTPRequestHandler):
    """A fake's request handler: its ``do_POST`` starts with ``self._read_body()`` and answers with
    ``self._json(...)`` or a chunked stream written with ``self._chunk(...)``."""

    # HTTP/1.1 for chunked streams and kept-alive connections, as the real APIs; no Nagle delay on small chunks.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> dict[str, Any]:
        """The request's JSON body, recorded with its path in ``server.requests``."""
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append((self.path, body))  # type: ignore[attr-defined]
        return body  # type: ignore[no-any-return]

    def _chunk(self, data: bytes) -> None:
        """One chunk of a ``Transfer-Encoding: chunked`` body; an empty one ends it."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeAPI:
    """A fake served on 127.0.0.1 (a free port) for the span of a ``with`` block: subclasses set ``handler``
    and ``base_path``, what ``base_url`` ends with."""

    handler: type[FakeHandler]
    base_path = ""

    def __enter__(self: _Fake) -> _Fake:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.server.daemon_threads = True
        self.server.requests = []  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.base_path}"

    @property
    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        """``(path, body)`` of each request received, in order."""
        return self.server.requests  # type: ignore[attr-defined, no-any-return]
