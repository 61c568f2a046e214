"""HTTP to LangSmith: one session, the server's ``/info``, and one request per call.

It knows bytes and status codes, not spans or runs. Every request runs with OpenTelemetry's
instrumentation suppressed, so that instrumented HTTP clients do not trace the exporter's own
traffic (which would feed spans back into the exporter), whichever thread sends it.
"""

from __future__ import annotations

import email.utils
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from opentelemetry import context as otel_context

from .version import __version__

logger = logging.getLogger(__name__)

# The server's defaults (reference 2.1), used when /info cannot be read.
DEFAULT_SIZE_LIMIT = 100
DEFAULT_SIZE_LIMIT_BYTES = 20 * 1024 * 1024
_INFO_TIMEOUT = 5.0
_MAX_MESSAGE = 500

try:
    _SUPPRESS_KEYS = (
        otel_context._SUPPRESS_INSTRUMENTATION_KEY,
        otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY,
    )
except AttributeError:  # pragma: no cover - older API: the string key the instrumentations also read
    _SUPPRESS_KEYS = ("suppress_instrumentation",)  # type: ignore[assignment]


@contextmanager
def suppressed_instrumentation() -> Iterator[None]:
    ctx = otel_context.get_current()
    for key in _SUPPRESS_KEYS:
        ctx = otel_context.set_value(key, True, ctx)
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


@dataclass(frozen=True)
class ServerInfo:
    """What the exporter needs of ``GET /info``."""

    size_limit: int = DEFAULT_SIZE_LIMIT
    size_limit_bytes: int = DEFAULT_SIZE_LIMIT_BYTES
    zstd_compression_enabled: bool = False

    @classmethod
    def from_json(cls, body: Any) -> ServerInfo:
        config = body.get("batch_ingest_config") if isinstance(body, dict) else None
        flags = body.get("instance_flags") if isinstance(body, dict) else None
        config = config if isinstance(config, dict) else {}
        flags = flags if isinstance(flags, dict) else {}
        return cls(
            size_limit=_positive(config.get("size_limit"), DEFAULT_SIZE_LIMIT),
            size_limit_bytes=_positive(config.get("size_limit_bytes"), DEFAULT_SIZE_LIMIT_BYTES),
            zstd_compression_enabled=flags.get("zstd_compression_enabled") is True,
        )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds, from delay-seconds or an HTTP date; None when absent or unreadable.

    >>> parse_retry_after("2.5")
    2.5
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
    10.0
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _positive(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


@dataclass(frozen=True)
class Response:
    """The outcome of one request: ``status`` is None when no HTTP response came back."""

    status: int | None
    message: str
    #: Seconds the server asked to wait (``Retry-After``, as seconds or as an HTTP date).
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Transport:
    """Thread-safe; creates its session on first use, so constructing it does no I/O."""

    def __init__(
        self,
        *,
        endpoint: str,
        api_key: str | None,
        workspace_id: str | None,
        timeout: float,
        session: requests.Session | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._api_key = api_key
        self._timeout = timeout
        self._headers = {"User-Agent": f"otel-langsmith/{__version__}", "Accept": "application/json"}
        if api_key:
            self._headers["x-api-key"] = api_key
        if workspace_id:
            self._headers["X-Tenant-Id"] = workspace_id
        self._session = session
        self._lock = threading.Lock()
        self._info: ServerInfo | None = None

    def _get_session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = requests.Session()
            return self._session

    def info(self) -> ServerInfo:
        """``GET /info``, fetched once; the server's defaults when it cannot be read."""
        if self._info is not None:
            return self._info
        info = ServerInfo()
        try:
            with suppressed_instrumentation():
                response = self._get_session().get(
                    f"{self.endpoint}/info", headers=self._headers, timeout=min(self._timeout, _INFO_TIMEOUT)
                )
            if response.ok:
                info = ServerInfo.from_json(response.json())
            else:
                logger.warning(
                    "GET %s/info answered HTTP %s; using default batch limits", self.endpoint, response.status_code
                )
        except (requests.RequestException, ValueError) as exc:
            logger.warning("GET %s/info failed (%s); using default batch limits", self.endpoint, self._mask(exc))
        self._info = info
        return info

    def post(self, path: str, body: bytes, headers: dict[str, str], *, timeout: float | None = None) -> Response:
        """One POST; ``timeout`` (seconds) can only shorten the configured one."""
        seconds = self._timeout if timeout is None else max(0.001, min(timeout, self._timeout))
        try:
            with suppressed_instrumentation():
                response = self._get_session().post(
                    f"{self.endpoint}{path}",
                    data=body,
                    headers={**self._headers, **headers},
                    timeout=seconds,
                )
        except requests.RequestException as exc:
            return Response(None, self._mask(exc))
        message = "" if response.ok else self._mask(response.text[:_MAX_MESSAGE])
        return Response(response.status_code, message, parse_retry_after(response.headers.get("Retry-After")))

    def get(self, path: str) -> Response:
        """One GET, for diagnostics."""
        try:
            with suppressed_instrumentation():
                response = self._get_session().get(
                    f"{self.endpoint}{path}", headers=self._headers, timeout=self._timeout
                )
        except requests.RequestException as exc:
            return Response(None, self._mask(exc))
        return Response(response.status_code, self._mask(response.text[:_MAX_MESSAGE]))

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def reset_after_fork(self) -> None:
        """A child process must not share the parent's pooled sockets."""
        self._lock = threading.Lock()
        self._session = None

    @property
    def masked_key(self) -> str:
        """Enough of the key to tell which one it is, never the key."""
        key = self._api_key
        if not key:
            return "not set"
        return f"{key[:5]}...{key[-4:]}" if len(key) > 12 else "set"

    def _mask(self, text: object) -> str:
        message = str(text)
        # A key too short to be a real one would mask ordinary words instead.
        if self._api_key and len(self._api_key) >= 8 and self._api_key in message:
            message = message.replace(self._api_key, "<api key>")
        return message
