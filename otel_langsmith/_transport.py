"""HTTP to LangSmith: one session, the server's ``/info``, one request per call, each with a deadline.

It knows bytes, status codes and URLs, not spans or runs. Three promises are kept here:

- **A request ends by its deadline.** ``requests`` times out per socket read, so a server that
  trickles its answer a byte at a time would hold a request forever; a timer shuts the socket of a
  request that outlives its deadline.
- **The API key goes only to the configured endpoint's host.** Redirects are never followed to
  another host (a same-host redirect is, including http to https).
- **The exporter's own traffic is never traced**: every request runs with OpenTelemetry's
  instrumentation suppressed, whichever thread sends it.
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import requests
import requests.adapters
from opentelemetry import context as otel_context
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager, ProxyManager

from ._settings import safe_url
from ._version import __version__

logger = logging.getLogger(__name__)

# The server's defaults, used when /info does not say.
DEFAULT_SIZE_LIMIT = 100
DEFAULT_SIZE_LIMIT_BYTES = 20 * 1024 * 1024
_INFO_TIMEOUT = 5.0
_MAX_MESSAGE = 500
_MAX_REDIRECTS = 3

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


def _positive(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


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
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class Response:
    """The outcome of one request. ``status`` is None when no HTTP answer came back."""

    status: int | None
    #: The body's text (or the error), short, key masked; an HTML page is named, not quoted.
    message: str = ""
    #: Seconds the server asked to wait (``Retry-After``).
    retry_after: float | None = None
    #: The answer is not LangSmith's API: an HTML page (a web server, a proxy), a redirect elsewhere.
    foreign: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _describe_body(response: requests.Response) -> tuple[str, bool]:
    content_type = response.headers.get("Content-Type", "").lower()
    body = response.content[:4096]
    if "html" in content_type or body.lstrip()[:1] == b"<":
        title = _TITLE.search(body)
        named = title.group(1).decode("utf-8", "replace").strip()[:80] if title else ""
        return (f"an HTML page titled {named!r}" if named else "an HTML page"), True
    return body[:_MAX_MESSAGE].decode("utf-8", "replace"), False


# -- the deadline of a whole request ----------------------------------------------------------------


class _Guard:
    """The request the current thread is making: the connection it uses, shut when time is up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: HTTPConnection | None = None
        self.expired = False

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            expired = self.expired
        if expired:
            self._shut(connection)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            connection = self._connection
        if connection is not None:
            self._shut(connection)

    @staticmethod
    def _shut(connection: HTTPConnection) -> None:
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the request has ended anyway


_current = threading.local()


class _GuardedMixin:
    def connect(self) -> None:
        guard: _Guard | None = getattr(_current, "guard", None)
        if guard is not None:
            guard.attach(self)  # type: ignore[arg-type]
        super().connect()  # type: ignore[misc]
        if guard is not None:
            # Again, now that there is a socket to shut: the guard may have expired meanwhile.
            guard.attach(self)  # type: ignore[arg-type]

    def request(self, *args: Any, **kwargs: Any) -> Any:
        guard: _Guard | None = getattr(_current, "guard", None)
        if guard is not None:
            guard.attach(self)  # type: ignore[arg-type]
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _GuardedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, its connections registered with the request's guard."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) in (PoolManager, ProxyManager):  # a SOCKS manager keeps its own pools
            manager.pool_classes_by_scheme = _POOLS
        return manager


class _Deadlines:
    """One thread that shuts the connection of each request still running at its deadline. (A
    timer thread per request cost more than the request.) It sleeps until the earliest deadline it
    knows, and is woken only by one earlier than that; a request that ended is simply forgotten."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._pending: dict[_Guard, float] = {}
        self._asleep_until = math.inf
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def watch(self, seconds: float) -> Iterator[_Guard]:
        """A guard for a request of the current thread, expired ``seconds`` from now unless it ends."""
        guard = _Guard()
        at = time.monotonic() + max(0.0, seconds)
        with self._wake:
            self._pending[guard] = at
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="otel-langsmith-deadlines", daemon=True)
                self._thread.start()
            elif at < self._asleep_until:
                self._wake.notify()
        _current.guard = guard
        try:
            yield guard
        finally:
            _current.guard = None
            with self._wake:
                self._pending.pop(guard, None)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while not self._closed:
                now = time.monotonic()
                due = [guard for guard, at in self._pending.items() if at <= now]
                for guard in due:
                    del self._pending[guard]
                    guard.expire()  # shuts a socket: quick, and nothing here waits on this lock
                self._asleep_until = min(self._pending.values(), default=math.inf)
                self._wake.wait(None if self._asleep_until == math.inf else self._asleep_until - now)


# -- the transport ----------------------------------------------------------------------------------


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
        try:
            self._origin = urllib.parse.urlsplit(endpoint)
        except ValueError:  # Settings.problems() names it; nothing is sent to it
            self._origin = urllib.parse.urlsplit("")
        self._api_key = api_key
        self._timeout = timeout
        self._headers = {"User-Agent": f"otel-langsmith/{__version__}", "Accept": "application/json"}
        if api_key:
            self._headers["x-api-key"] = api_key
        if workspace_id:
            self._headers["X-Tenant-Id"] = workspace_id
        self._given_session = session
        self._session: requests.Session | None = None
        self._options: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._info: ServerInfo | None = None
        self._guards: set[_Guard] = set()
        self._cut = False
        self._deadlines = _Deadlines()

    @property
    def shown_endpoint(self) -> str:
        """The endpoint as log lines may show it (no password)."""
        return safe_url(self.endpoint)

    def _get_session(self) -> tuple[requests.Session, dict[str, Any]]:
        """The session, and what to send each request with."""
        with self._lock:
            if self._session is None:
                session = self._given_session or requests.Session()
                base = f"{self._origin.scheme}://{self._origin.netloc}"
                # A session given with its own adapter for this host keeps it (and only socket timeouts).
                if type(session.get_adapter(base)) is requests.adapters.HTTPAdapter:
                    session.mount(base, _GuardedAdapter())
                if self._given_session is None:
                    # The environment's proxies and CA bundle, read once for the endpoint: requests
                    # reads the whole environment again on every request, which cost more than
                    # sending it. (A given session is left to its own settings.)
                    found = session.merge_environment_settings(base, {}, None, None, None)
                    session.trust_env = False
                    self._options = {"proxies": found["proxies"], "verify": found["verify"], "cert": found["cert"]}
                self._session = session
            return self._session, self._options

    # -- requests ---------------------------------------------------------------------------------

    def info(self, *, deadline: float) -> ServerInfo | None:
        """``GET /info``, kept once it answered; None while the endpoint does not answer at all."""
        if self._info is not None:
            return self._info
        response = self.request("GET", "/info", deadline=min(deadline, time.monotonic() + _INFO_TIMEOUT))
        if response.status is None or response.status >= 500 or response.status == 429:
            return None  # not an answer about the server, only about this moment
        info = ServerInfo()
        if response.ok and not response.foreign:
            try:
                info = ServerInfo.from_json(orjson.loads(response.message or "{}"))
            except orjson.JSONDecodeError:
                pass
        else:
            logger.warning(
                "GET %s/info answered %s; using default batch limits", self.shown_endpoint, describe(response)
            )
        self._info = info
        return info

    def post(self, path: str, body: bytes, headers: dict[str, str], *, deadline: float) -> Response:
        return self.request("POST", path, body=body, headers=headers, deadline=deadline)

    def request(
        self,
        method: str,
        path: str,
        *,
        deadline: float,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One request, done by ``deadline`` (``time.monotonic()``) whatever the server does."""
        url = f"{self.endpoint}{path}"
        for _ in range(_MAX_REDIRECTS + 1):
            remaining = min(deadline - time.monotonic(), self._timeout)
            if remaining <= 0:
                return Response(None, "the request's deadline passed")
            try:
                response = self._send(method, url, body, headers, remaining)
            except requests.RequestException as exc:
                return Response(None, self._mask(exc))
            if not response.is_redirect:
                return self._response(response)
            target = urllib.parse.urljoin(url, response.headers.get("Location", ""))
            if not self._same_host(target):
                return Response(
                    response.status_code,
                    f"redirected to {safe_url(target)!r}, another host: not followed, the API key goes only to "
                    f"{self.shown_endpoint}; set LANGSMITH_ENDPOINT to the API's own address",
                    foreign=True,
                )
            if method == "POST" and response.status_code not in (307, 308):
                return Response(response.status_code, f"redirected to {safe_url(target)!r} with a method change")
            url = target
        return Response(None, f"more than {_MAX_REDIRECTS} redirects")

    def _send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str] | None, seconds: float
    ) -> requests.Response:
        session, options = self._get_session()
        with suppressed_instrumentation(), self._deadlines.watch(seconds) as guard:
            self._track(guard, True)
            try:
                response = session.request(
                    method,
                    url,
                    data=body,
                    headers={**self._headers, **(headers or {})},
                    timeout=seconds,
                    allow_redirects=False,
                    **options,
                )
                _ = response.content  # read now, within the deadline
                if guard.expired:
                    # Cut by the deadline after its status line came: what was read is not the answer.
                    raise requests.Timeout(f"no complete answer within {seconds:.1f}s")
            except requests.RequestException:
                if guard.expired:
                    raise requests.Timeout(f"no complete answer within {seconds:.1f}s") from None
                raise
            finally:
                self._track(guard, False)
        return response

    def _track(self, guard: _Guard, add: bool) -> None:
        with self._lock:
            if add:
                self._guards.add(guard)
            else:
                self._guards.discard(guard)
            cut = add and self._cut
        if cut:
            guard.expire()

    def cut_short(self) -> None:
        """End every request in flight now, and any begun after: shutdown's grace is over (a
        request about to begin when it ran out would otherwise have its whole timeout)."""
        with self._lock:
            self._cut = True
            guards = list(self._guards)
        for guard in guards:
            guard.expire()

    def _response(self, response: requests.Response) -> Response:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        message, foreign = _describe_body(response)
        if response.ok and not foreign:
            message = response.content.decode("utf-8", "replace") if response.request.method == "GET" else ""
        return Response(response.status_code, self._mask(message), retry_after, foreign)

    def _same_host(self, target: str) -> bool:
        parts = urllib.parse.urlsplit(target)
        origin = self._origin
        if parts.hostname != origin.hostname:
            return False
        same = parts.scheme == origin.scheme and parts.port == origin.port
        # http to https on the same host, as requests allows it: from the default port to the default port.
        upgraded = (origin.scheme, origin.port or 80, parts.scheme, parts.port or 443) == ("http", 80, "https", 443)
        return same or upgraded

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
        self._deadlines.close()
        self._deadlines = _Deadlines()  # a request after close still gets its deadline

    def reset_after_fork(self) -> None:
        """A child process must not share the parent's pooled sockets, nor count on its threads."""
        self._lock = threading.Lock()
        self._session = None
        self._guards = set()
        self._cut = False
        self._deadlines = _Deadlines()

    @property
    def masked_key(self) -> str:
        """Enough of the key to tell which one it is, never the key."""
        key = self._api_key
        if not key:
            return "not set"
        return f"{key[:5]}...{key[-4:]}" if len(key) > 12 else "set"

    def _mask(self, text: object) -> str:
        message = str(text)
        key = self._api_key
        # A key too short to be a real one would mask ordinary words instead. Its repr too: an
        # error about a key with a line break quotes it escaped.
        if key and len(key) >= 8:
            for shown in {key, repr(key)[1:-1]}:
                message = message.replace(shown, "<api key>")
        password = self._origin.password
        if password and password in message:
            message = message.replace(password, "***")
        return message


def describe(response: Response) -> str:
    """A response in a few words, for log lines."""
    status = f"HTTP {response.status}" if response.status is not None else "no answer"
    return f"{status}: {response.message or '(empty body)'}"
