"""A local LangSmith-compatible ingestion server, for tests and demos.

:class:`LangSmithReceiver` is a real HTTP server on ``127.0.0.1`` (port 0). It serves ``GET /info``,
``POST /runs/multipart`` (identity, gzip or zstd bodies) and ``POST /runs/batch``, under any path
prefix (``/api/v1`` included), and checks each request the way LangSmith does: the API key, the part
layout, the required fields and every ``dotted_order`` rule. One bad run rejects the whole request
with 400 and the server's message. Accepted posts and patches are merged into runs that tests can
read as a dict or as a tree.

Example::

    from otel_langsmith.testing import LangSmithReceiver

    with LangSmithReceiver() as receiver:
        exporter = receiver.exporter()        # a LangSmithSpanExporter pointed at it
        ...                                   # trace something, then shut the provider down
        print(receiver.format_tree())

With pytest, the ``langsmith_receiver`` fixture gives a started receiver.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import _ids as ids
from ._exporter import LangSmithSpanExporter

try:
    import zstandard
except ImportError:  # pragma: no cover - zstd bodies are then refused with 415
    zstandard = None  # type: ignore[assignment]

__all__ = ["Fault", "LangSmithReceiver", "ReceivedRequest", "RejectedRequest", "format_tree", "tree_problems"]

RUN_TYPES = frozenset({"tool", "chain", "llm", "retriever", "embedding", "prompt", "parser"})
_FIELDS = {"inputs": dict, "outputs": dict, "events": list, "extra": dict, "error": str, "serialized": dict}
_PART_NAME = re.compile(r"(?P<op>post|patch|feedback|attachment)\.(?P<id>[0-9a-fA-F-]{36})(?:\.(?P<field>[^.]+))?")
_SEGMENT = re.compile(r"(\d{8}T\d{6})(\d*)Z([0-9a-fA-F-]{36})")


class RejectedRequest(Exception):
    """A request the server refuses, with its status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ReceivedRequest:
    """One request as the receiver saw it."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    operations: int
    body_bytes: int
    message: str = ""
    #: ``time.monotonic()`` when the request arrived.
    at: float = 0.0
    #: The runs a write carried (accepted or not), and the last 4 characters of its ``x-api-key``.
    run_ids: tuple[str, ...] = ()
    key_ending: str = ""


@dataclass
class Fault:
    """A planned answer to one write request, for testing delivery.

    With a ``status``, the request is answered with it (after ``delay`` seconds) and not stored;
    without one, the request is handled normally after ``delay`` seconds. ``drop_connection``
    closes the connection without any answer. ``trickle`` sends the answer a byte at a time, that
    many seconds apart (a server that keeps a connection alive without ever finishing its answer).
    """

    status: int | None = 503
    retry_after: str | None = None
    delay: float = 0.0
    drop_connection: bool = False
    message: str = "planned fault"
    trickle: float = 0.0


def _server_time(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _parse_time(value: Any, name: str, run_id: str) -> datetime:
    if not isinstance(value, str):
        raise RejectedRequest(422, f"invalid '{name}' for run_id:{run_id}: expected an ISO-8601 string")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RejectedRequest(422, f"invalid '{name}' for run_id:{run_id}: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def check_dotted_order(run: dict[str, Any]) -> None:
    """LangSmith's ``dotted_order`` rules (docs/architecture.md); raises :class:`RejectedRequest`."""
    run_id, trace_id = run.get("id"), run.get("trace_id")
    dotted_order, parent_run_id = run.get("dotted_order"), run.get("parent_run_id")
    if not isinstance(dotted_order, str) or not dotted_order:
        raise RejectedRequest(400, f"invalid 'dotted_order' for run_id:{run_id}: missing")
    segments: list[tuple[int, str]] = []
    for part in dotted_order.split("."):
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise RejectedRequest(400, f"invalid 'dotted_order': malformed segment {part!r}")
        stamp, fraction, _segment_id = match.groups()
        if len(fraction) != 6:
            raise RejectedRequest(
                400,
                f"invalid 'dotted_order': {dotted_order} parsing time \"{stamp}.{fraction}\" as "
                f'"20060102T150405.000000": cannot parse ".{fraction}" as ".000000"',
            )
        segments.append(ids.parse_segment(part))
    details = f"run_id:{run_id} trace_id:{trace_id} dotted_order:{dotted_order} parent_run_id:{parent_run_id}"
    if parent_run_id is None and len(segments) != 1:
        raise RejectedRequest(400, f"dotted_order must contain a single part for root runs for {details}")
    if parent_run_id is not None and len(segments) < 2:
        raise RejectedRequest(400, f"dotted_order must contain at least two parts for child runs for {details}")
    if segments[0][1] != trace_id:
        raise RejectedRequest(
            400, f"invalid 'dotted_order': trace_id {trace_id} does not match first part of dotted_order {dotted_order}"
        )
    if segments[-1][1] != run_id:
        raise RejectedRequest(
            400, f"invalid 'dotted_order': run id {run_id} does not match last part of dotted_order {dotted_order}"
        )
    if parent_run_id is not None and segments[-2][1] != parent_run_id:
        raise RejectedRequest(
            400,
            f"invalid 'dotted_order': parent_run_id {parent_run_id} does not match "
            f"second-to-last part of dotted_order {dotted_order}",
        )
    for (parent_us, _), (child_us, _) in itertools.pairwise(segments):
        if child_us < parent_us:
            raise RejectedRequest(
                400,
                f"dotted_order has timestamp {_server_time(child_us)} earlier than parent timestamp "
                f"{_server_time(parent_us)}",
            )


def check_run(operation: str, run: dict[str, Any], *, max_age: timedelta | None = None) -> None:
    """Required fields, types and ``dotted_order`` of one post or patch; raises :class:`RejectedRequest`."""
    run_id = run.get("id")
    required: tuple[str, ...] = ("id", "trace_id", "dotted_order")
    if operation == "post":
        required += ("name", "run_type", "start_time")
    for name in required:
        if run.get(name) in (None, ""):
            raise RejectedRequest(422, f"{operation} run_id:{run_id} is missing required field '{name}'")
    for name in ("id", "trace_id", "parent_run_id", "session_id"):
        value = run.get(name)
        if value is not None:
            try:
                ids.normalize_uuid(str(value))
            except ValueError:
                raise RejectedRequest(422, f"invalid '{name}' for run_id:{run_id}: {value!r}") from None
    if operation == "post" and not (run.get("session_name") or run.get("session_id")):
        raise RejectedRequest(422, f"post run_id:{run_id} names no project (session_name or session_id)")
    if "run_type" in run and run["run_type"] not in RUN_TYPES:
        raise RejectedRequest(422, f"invalid 'run_type' for run_id:{run_id}: {run['run_type']!r}")
    start = _parse_time(run["start_time"], "start_time", str(run_id)) if "start_time" in run else None
    if run.get("end_time") is not None:
        _parse_time(run["end_time"], "end_time", str(run_id))
    for name, kind in _FIELDS.items():
        if run.get(name) is not None and not isinstance(run[name], kind):
            raise RejectedRequest(422, f"invalid '{name}' for run_id:{run_id}: expected {kind.__name__}")
    if max_age is not None and start is not None and datetime.now(timezone.utc) - start > max_age:
        raise RejectedRequest(400, f"start_time of run_id:{run_id} is older than {max_age}")
    check_dotted_order(run)


def _header_params(value: str) -> tuple[str, dict[str, str]]:
    main, *rest = value.split(";")
    params = {}
    for item in rest:
        key, _, raw = item.strip().partition("=")
        params[key.strip().lower()] = raw.strip().strip('"')
    return main.strip().lower(), params


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, dict[str, str], bytes]]:
    """Split a body into (name, headers, payload) with LangSmith's rules on the part layout."""
    kind, params = _header_params(content_type)
    boundary = params.get("boundary")
    if kind != "multipart/form-data" or not boundary:
        raise RejectedRequest(400, f"expected multipart/form-data with a boundary, got {content_type!r}")
    delimiter = b"--" + boundary.encode()
    if not body.startswith(delimiter):
        raise RejectedRequest(400, "multipart body does not start with the boundary")
    parts = []
    position = len(delimiter)
    while True:
        if body.startswith(b"--", position):
            break
        if not body.startswith(b"\r\n", position):
            raise RejectedRequest(400, "malformed multipart body: expected CRLF after the boundary")
        header_end = body.find(b"\r\n\r\n", position + 2)
        if header_end < 0:
            raise RejectedRequest(400, "malformed multipart body: part headers never end")
        headers: dict[str, str] = {}
        for line in body[position + 2 : header_end].decode("latin-1").split("\r\n"):
            key, sep, value = line.partition(":")
            if not sep:
                raise RejectedRequest(400, f"malformed part header line {line!r}")
            headers[key.strip().lower()] = value.strip()
        disposition, disposition_params = _header_params(headers.get("content-disposition", ""))
        name = disposition_params.get("name")
        if disposition != "form-data" or not name:
            raise RejectedRequest(400, "every part needs 'Content-Disposition: form-data; name=...'")
        if "content-type" not in headers:
            raise RejectedRequest(400, f"part {name} has no Content-Type")
        if "content-encoding" in headers:
            raise RejectedRequest(400, f"part {name}: per-part Content-Encoding is not allowed")
        _, type_params = _header_params(headers["content-type"])
        length_text = headers.get("content-length", type_params.get("length"))
        if length_text is None or not (length_text.isascii() and length_text.isdigit() and len(length_text) <= 18):
            raise RejectedRequest(400, f"part {name} has neither a Content-Length header nor a length parameter")
        start = header_end + 4
        end = start + int(length_text)
        if end > len(body) or not body.startswith(b"\r\n" + delimiter, end):
            raise RejectedRequest(400, f"part {name}: Content-Length {length_text} does not match its payload")
        parts.append((name, headers, body[start:end]))
        position = end + 2 + len(delimiter)
    return parts


def _json(payload: bytes, where: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise RejectedRequest(422, f"{where}: invalid JSON ({exc})") from None


def operations_from_multipart(parts: list[tuple[str, dict[str, str], bytes]]) -> list[tuple[str, dict[str, Any]]]:
    """(operation, run) pairs with the out-of-band fields put back into each run."""
    mains: dict[tuple[str, str], dict[str, Any]] = {}
    fields: dict[tuple[str, str], dict[str, Any]] = {}
    for name, headers, payload in parts:
        match = _PART_NAME.fullmatch(name)
        if match is None:
            raise RejectedRequest(400, f"invalid part name {name!r}")
        operation, run_id, field_name = match.group("op"), match.group("id"), match.group("field")
        if operation in ("feedback", "attachment"):
            continue
        if field_name is None:
            run = _json(payload, name)
            if not isinstance(run, dict):
                raise RejectedRequest(422, f"{name}: the run must be a JSON object")
            if str(run.get("id")) != run_id:
                raise RejectedRequest(422, f"{name}: id {run.get('id')!r} does not match the part name")
            if (operation, run_id) in mains:
                raise RejectedRequest(422, f"{name}: the same operation appears twice in one request")
            mains[(operation, run_id)] = run
        else:
            if field_name not in _FIELDS:
                raise RejectedRequest(400, f"invalid part name {name!r}: unknown field {field_name!r}")
            if not headers["content-type"].lower().startswith("application/json"):
                raise RejectedRequest(400, f"{name}: expected application/json")
            fields.setdefault((operation, run_id), {})[field_name] = _json(payload, name)
    for key in fields:
        if key not in mains:
            raise RejectedRequest(422, f"{key[0]}.{key[1]}: field parts without the run's own part")
    return [(op, {**run, **fields.get((op, run_id), {})}) for (op, run_id), run in mains.items()]


class LangSmithReceiver:
    """A LangSmith-compatible ingestion endpoint on loopback. Thread-safe.

    Args:
        api_key: The key every write must carry as ``x-api-key`` (None: any key, or none).
        port: The port on 127.0.0.1 (0: a free one).
        size_limit: Operations per batch, as ``/info`` advertises it.
        size_limit_bytes: Bytes per batch, as ``/info`` advertises it.
        zstd: Advertise zstd compression in ``/info``.
        batch_max_age: ``/runs/batch`` refuses runs that started longer ago than this.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "lsv2-test-key",
        port: int = 0,
        size_limit: int = 100,
        size_limit_bytes: int = 20 * 1024 * 1024,
        zstd: bool = True,
        batch_max_age: timedelta = timedelta(hours=24),
    ) -> None:
        self.api_key = api_key
        #: What ``GET /info`` answers; set it to None to have ``/info`` answer 404.
        self.info_body: dict[str, Any] | None = {
            "version": "otel-langsmith-receiver",
            # Every key of the server's schema: the LangSmith SDK reads them all.
            "batch_ingest_config": {
                "use_multipart_endpoint": True,
                "scale_up_qsize_trigger": 1000,
                "scale_up_nthreads_limit": 16,
                "scale_down_nempty_trigger": 4,
                "size_limit": size_limit,
                "size_limit_bytes": size_limit_bytes,
            },
            "instance_flags": {"zstd_compression_enabled": bool(zstd and zstandard is not None)},
        }
        self.batch_max_age = batch_max_age
        #: Planned answers, one consumed per write request (see :meth:`plan`).
        self.faults: deque[Fault] = deque()
        #: Refuse, with 413, any write whose body (as sent, compressed or not) is larger.
        self.byte_limit: int | None = None
        #: Refuse, with 400 and a message naming it, any request holding one of these run ids.
        self.refuse_runs: set[str] = set()
        #: False: ``/runs/multipart`` answers 404, as on older self-hosted servers.
        self.multipart_enabled = True
        self._port = port
        self._lock = threading.Condition()
        self._runs: dict[str, dict[str, Any]] = {}
        self._early_patches: dict[str, list[dict[str, Any]]] = {}
        self._operations: dict[str, list[str]] = {}
        self._requests: list[ReceivedRequest] = []
        #: Posts of a run id that was already posted.
        self.duplicate_posts = 0
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def plan(self, *faults: Fault) -> None:
        """Answer the next write requests with these faults, in order."""
        with self._lock:
            self.faults.extend(faults)

    def start(self) -> LangSmithReceiver:
        """Start serving; after a :meth:`stop`, on the same port again (an endpoint coming back)."""
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        server.receiver = self  # type: ignore[attr-defined]
        self._port = server.server_address[1]
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="langsmith-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, as a server going down does: the listener closes and every connection
        a client keeps alive is cut."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed already

    def __enter__(self) -> LangSmithReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The endpoint to give an exporter (``LANGSMITH_ENDPOINT``); it stays the same across a stop."""
        if not self._port:
            raise RuntimeError("the receiver was never started")
        return f"http://127.0.0.1:{self._port}"

    def exporter(self, **options: Any) -> LangSmithSpanExporter:
        """A :class:`~otel_langsmith.LangSmithSpanExporter` that sends here."""
        options.setdefault("endpoint", self.url)
        options.setdefault("api_key", self.api_key)
        return LangSmithSpanExporter(**options)

    # -- what was received ----------------------------------------------------------------------

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        """Every stored run by id, posts and patches merged."""
        with self._lock:
            return {run_id: dict(run) for run_id, run in self._runs.items()}

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return sorted(self._requests, key=lambda request: request.at)

    @property
    def rejected(self) -> list[ReceivedRequest]:
        """Write requests the receiver refused."""
        return [r for r in self.requests if r.method == "POST" and r.status >= 400]

    def wait_for_runs(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` runs are stored; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._runs) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
            self._early_patches.clear()
            self._operations.clear()
            self._requests.clear()
            self.duplicate_posts = 0

    def children(self, run_id: str | None) -> list[dict[str, Any]]:
        """The runs whose parent is ``run_id`` (roots for None), in LangSmith's order."""
        runs = self.runs.values()
        return sorted((r for r in runs if r.get("parent_run_id") == run_id), key=lambda r: r["dotted_order"])

    def roots(self) -> list[dict[str, Any]]:
        return self.children(None)

    def problems(self) -> list[str]:
        """Inconsistencies across stored runs: missing parents, wrong trace ids or dotted-order prefixes."""
        return tree_problems(self.runs)

    def format_tree(self, *, trace_id: str | None = None) -> str:
        """An indented outline of the runs: name, run type, duration, status."""
        return format_tree(self.runs.values(), trace_id=trace_id)

    # -- request handling -----------------------------------------------------------------------

    def _handle_post(self, path: str, headers: dict[str, str], body: bytes, arrived: float) -> tuple[int, Any]:
        headers = {key.lower(): value for key, value in headers.items()}
        ops: list[tuple[str, dict[str, Any]]] = []
        try:
            if self.api_key is not None and headers.get("x-api-key") != self.api_key:
                raise RejectedRequest(401, "Unauthorized: missing or invalid x-api-key")
            if self.byte_limit is not None and len(body) > self.byte_limit:
                raise RejectedRequest(413, f"Request Entity Too Large: {len(body)} bytes > {self.byte_limit}")
            ops = self._checked(path.split("?", maxsplit=1)[0].rstrip("/"), headers, body)
        except RejectedRequest as rejected:
            self._record("POST", path, rejected.status, headers, ops, len(body), rejected.message, arrived)
            return rejected.status, {"error": rejected.message}
        with self._lock:
            for operation, run in ops:
                self._store(operation, run)
            self._lock.notify_all()
        self._record("POST", path, 202, headers, ops, len(body), "", arrived)
        return 202, {}

    def _checked(self, route: str, headers: dict[str, str], body: bytes) -> list[tuple[str, dict[str, Any]]]:
        """The operations of a write, each checked as LangSmith checks it."""
        payload = _decode(body, headers.get("content-encoding", "identity"))
        if route.endswith("/runs/multipart") and self.multipart_enabled:
            ops, max_age = operations_from_multipart(parse_multipart(payload, headers.get("content-type", ""))), None
        elif route.endswith("/runs/batch"):
            ops, max_age = _batch_operations(payload), self.batch_max_age
        else:
            raise RejectedRequest(404, "Not Found")
        for operation, run in ops:
            check_run(operation, run, max_age=max_age)
            if str(run["id"]) in self.refuse_runs:
                raise RejectedRequest(400, f"run_id:{run['id']} trace_id:{run['trace_id']} refused by the fault plan")
        return ops

    def operations(self, run_id: str) -> list[str]:
        """The operations (``post``, ``patch``) accepted for a run, in order: what LangSmith bills."""
        with self._lock:
            return list(self._operations.get(run_id, []))

    def _store(self, operation: str, run: dict[str, Any]) -> None:
        run_id = str(run["id"])
        self._operations.setdefault(run_id, []).append(operation)
        if operation == "post":
            if run_id in self._runs:
                self.duplicate_posts += 1
            stored = {**self._runs.get(run_id, {}), **run}
            for patch in self._early_patches.pop(run_id, []):
                _merge_patch(stored, patch)
            self._runs[run_id] = stored
        elif run_id in self._runs:
            _merge_patch(self._runs[run_id], run)
        else:
            # Ingestion is asynchronous on the server: a patch may land before its post.
            self._early_patches.setdefault(run_id, []).append(run)

    def _record(
        self,
        method: str,
        path: str,
        status: int,
        headers: dict[str, str],
        ops: list[tuple[str, dict[str, Any]]],
        size: int,
        message: str = "",
        arrived: float | None = None,
    ) -> None:
        safe = {k.lower(): ("<api key>" if k.lower() == "x-api-key" else v) for k, v in headers.items()}
        at = time.monotonic() if arrived is None else arrived
        run_ids = tuple(str(run["id"]) for _, run in ops)
        key_ending = (headers.get("x-api-key") or "")[-4:]
        request = ReceivedRequest(method, path, status, safe, len(ops), size, message, at, run_ids, key_ending)
        with self._lock:
            self._requests.append(request)


def _decode(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    try:
        if encoding in ("", "identity"):
            return body
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "zstd" and zstandard is not None:
            # Frames written by a stream writer carry no content size: read them as a stream.
            return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(body))
    except Exception as exc:
        raise RejectedRequest(400, f"could not decode {encoding} body: {exc}") from None
    raise RejectedRequest(415, f"unsupported Content-Encoding {encoding!r}")


def _batch_operations(payload: bytes) -> list[tuple[str, dict[str, Any]]]:
    document = _json(payload, "/runs/batch body")
    if not isinstance(document, dict) or not ({"post", "patch"} & document.keys()):
        raise RejectedRequest(422, "payload must have post and/or patch arrays")
    ops = []
    for operation in ("post", "patch"):
        for run in document.get(operation) or []:
            if not isinstance(run, dict):
                raise RejectedRequest(422, f"{operation}: every run must be an object")
            ops.append((operation, run))
    return ops


class _Handler(BaseHTTPRequestHandler):
    """One request to the receiver its server carries."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm and the
    # client's delayed ACK add tens of milliseconds to every response.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the receiver's records instead."""

    @property
    def receiver(self) -> LangSmithReceiver:
        return self.server.receiver  # type: ignore[attr-defined, no-any-return]

    def setup(self) -> None:
        super().setup()
        with self.receiver._lock:
            self.receiver._connections.add(self.connection)

    def finish(self) -> None:
        with self.receiver._lock:
            self.receiver._connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        receiver = self.receiver
        route = self.path.split("?", 1)[0].rstrip("/")
        reply: Any
        if route.endswith("/info") and receiver.info_body is not None:
            status, reply = 200, receiver.info_body
        elif route.endswith("/sessions"):
            # Read-only and authenticated: what ``otel-langsmith doctor`` checks a key with.
            if receiver.api_key is None or self.headers.get("x-api-key") == receiver.api_key:
                status, reply = 200, []
            else:
                status, reply = 401, {"error": "Unauthorized"}
        else:
            status, reply = 404, {"error": "Not Found"}
        receiver._record("GET", self.path, status, dict(self.headers.items()), [], 0)
        self._reply(status, reply)

    def do_POST(self) -> None:
        receiver = self.receiver
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = dict(self.headers.items())
        with receiver._lock:
            fault = receiver.faults.popleft() if receiver.faults else None
        if fault is not None and (fault.drop_connection or fault.status is not None):
            status = 0 if fault.drop_connection else fault.status or 0
            receiver._record("POST", self.path, status, headers, [], len(body), fault.message, arrived)
            time.sleep(fault.delay)
            if fault.drop_connection:
                self.close_connection = True
                return
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._reply(status, {"error": fault.message}, extra, trickle=fault.trickle)
            return
        if fault is not None:
            time.sleep(fault.delay)
        status, reply = receiver._handle_post(self.path, headers, body, arrived)
        self._reply(status, reply, trickle=fault.trickle if fault is not None else 0.0)

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None, *, trickle: float = 0.0) -> None:
        data = json.dumps(payload).encode()
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        head += ["Content-Type: application/json", f"Content-Length: {len(data)}", "", ""]
        answer = "\r\n".join(head).encode("latin-1") + data
        try:
            if not trickle:
                self.wfile.write(answer)
                return
            for index in range(len(answer)):
                self.wfile.write(answer[index : index + 1])
                self.wfile.flush()
                time.sleep(trickle)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a slow-response fault): nothing to answer


def tree_problems(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Inconsistencies across runs by id: missing parents, wrong trace ids or dotted-order prefixes."""
    found = []
    for run in runs.values():
        parent_id = run.get("parent_run_id")
        if parent_id is None:
            continue
        parent = runs.get(parent_id)
        if parent is None:
            found.append(f"run {run['id']} ({run.get('name')}): parent {parent_id} was never received")
            continue
        if run["trace_id"] != parent["trace_id"]:
            found.append(f"run {run['id']}: trace_id differs from its parent's")
        if run["dotted_order"].rpartition(".")[0] != parent["dotted_order"]:
            found.append(f"run {run['id']}: dotted_order does not extend its parent's")
    return found


def format_tree(runs: Iterable[dict[str, Any]], *, trace_id: str | None = None) -> str:
    """An indented outline of runs: name, run type, duration, status; one trace, or all."""
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    for run in sorted(runs, key=lambda r: r["dotted_order"]):
        by_parent.setdefault(run.get("parent_run_id"), []).append(run)
    lines: list[str] = []

    def walk(run: dict[str, Any], depth: int) -> None:
        lines.append("  " * depth + _describe(run))
        for child in by_parent.get(run["id"], []):
            walk(child, depth + 1)

    for root in by_parent.get(None, []):
        if trace_id is None or root["trace_id"] == trace_id:
            walk(root, 0)
    return "\n".join(lines)


def _merge_patch(stored: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is not None:
            stored[key] = value


def _describe(run: dict[str, Any]) -> str:
    start = _parse_time(run["start_time"], "start_time", run["id"])
    if run.get("end_time"):
        duration = (_parse_time(run["end_time"], "end_time", run["id"]) - start).total_seconds() * 1000
        timing = f"{duration:.1f} ms"
    else:
        timing = "running"
    status = "error" if run.get("error") else "ok"
    if run.get("error"):
        status += ": " + str(run["error"]).splitlines()[0][:80]
    return f"{run['name']} [{run['run_type']}] {timing} {status}"
