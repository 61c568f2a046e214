"""OTLP trace requests to OpenTelemetry's own ``ReadableSpan``, and OTLP answers back.

The gateway decodes what senders post into the same span objects the SDK hands an exporter, so
the conversion after it is the exporter's, unchanged. Both encodings of OTLP/HTTP are read:
protobuf (with the ``opentelemetry-proto`` definitions) and JSON (ids in hex, enums as numbers,
64-bit integers as numbers or strings; https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding).

A span that cannot be a span (an id of the wrong length, or all zeros) is rejected, counted and
named in the answer's partial success; the request's other spans are taken.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import zstandard
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_KIND_ORDER = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
# OTLP's SpanKind counts from UNSPECIFIED (0); OpenTelemetry Python's from INTERNAL.
_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
# Bits of Span.flags above the W3C trace flags: whether the parent was remote.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200


class Undecodable(ValueError):
    """The body is not an OTLP trace request in the encoding it claims (answered 400)."""


class TooLarge(ValueError):
    """The body, once decompressed, is larger than the gateway takes (answered 413)."""


@dataclass
class Decoded:
    spans: list[ReadableSpan] = field(default_factory=list)
    rejected: int = 0
    #: Why the first rejected span was rejected.
    reason: str = ""

    def reject(self, why: str) -> None:
        self.rejected += 1
        self.reason = self.reason or why


def decompress(body: bytes, encoding: str, *, limit: int) -> bytes:
    """The body under its ``Content-Encoding``, refused beyond ``limit`` bytes decompressed (a
    small body may unpack to gigabytes). Every gzip member and zstd frame counts, and a body that
    ends inside one is undecodable: spans cut off are not answered as taken."""
    encoding = encoding.strip().lower()
    try:
        if encoding in ("", "identity"):
            data = body
        elif encoding in ("gzip", "x-gzip", "deflate"):
            data = _gunzip(body, limit)
        elif encoding == "zstd":
            data = _unzstd(body, limit)
        else:
            raise Undecodable(f"Content-Encoding {encoding!r} is not supported (gzip, zstd or none)")
    except (zlib.error, zstandard.ZstdError) as exc:
        raise Undecodable(f"the body is not valid {encoding}: {exc}") from None
    if len(data) > limit:
        raise TooLarge(f"the body is larger than {limit} bytes decompressed")
    return data


def _gunzip(body: bytes, limit: int) -> bytes:
    data = bytearray()
    rest = body
    while rest:
        # wbits 47: a gzip or zlib header, whichever it is.
        member = zlib.decompressobj(47)
        data += member.decompress(rest, limit + 1 - len(data))
        if len(data) > limit or member.unconsumed_tail:
            raise TooLarge(f"the body is larger than {limit} bytes decompressed")
        if not member.eof:
            raise Undecodable("the gzip body ends inside a member")
        rest = member.unused_data
    return bytes(data)


def _unzstd(body: bytes, limit: int) -> bytes:
    # A frame object has no output bound: the size is checked first by a bounded read, then the
    # frames are decompressed one by one, which also tells whether the last one ended.
    with zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True) as reader:
        if len(reader.read(limit + 1)) > limit:
            raise TooLarge(f"the body is larger than {limit} bytes decompressed")
    parts = []
    rest = body
    while rest:
        frame = zstandard.ZstdDecompressor().decompressobj()
        parts.append(frame.decompress(rest))
        if not frame.eof:
            raise Undecodable("the zstd body ends inside a frame")
        rest = frame.unused_data
    return b"".join(parts)


def media_type(content_type: str) -> str:
    """A ``Content-Type`` without its parameters, lower-cased."""
    return content_type.split(";", 1)[0].strip().lower()


def answer_type(content_type: str) -> str:
    """How the answer to a request of ``content_type`` is encoded: protobuf for protobuf, else JSON."""
    return PROTOBUF if media_type(content_type) == PROTOBUF else JSON


def decode(data: bytes, content_type: str) -> Decoded:
    """An ``ExportTraceServiceRequest`` as spans; raises :class:`Undecodable`."""
    media = media_type(content_type)
    if media == PROTOBUF:
        return _from_protobuf(data)
    if media == JSON:
        return _from_json(data)
    raise Undecodable(f"Content-Type {media or '(none)'!r} is not OTLP ({PROTOBUF} or {JSON})")


def answer(content_type: str, *, rejected: int = 0, message: str = "") -> bytes:
    """An ``ExportTraceServiceResponse`` in the request's encoding: empty, or a partial success."""
    if answer_type(content_type) == JSON:
        partial = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}} if rejected else {}
        return orjson.dumps(partial)
    if not rejected:
        return b""
    inner = _field_varint(1, rejected) + _field_bytes(2, message.encode())
    return _field_bytes(1, inner)


# HTTP statuses as google.rpc.Code: INVALID_ARGUMENT, UNAUTHENTICATED, RESOURCE_EXHAUSTED,
# INTERNAL, UNAVAILABLE.
RPC_CODES = {400: 3, 401: 16, 413: 8, 500: 13, 503: 14}
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def status(content_type: str, code: int, message: str, *, retry_after: int | None = None) -> bytes:
    """A ``google.rpc.Status`` (OTLP's error body) in the request's encoding, JSON when unknown;
    with a ``RetryInfo`` detail when the sender should wait (gRPC senders read it there)."""
    if answer_type(content_type) == JSON:
        return orjson.dumps({"code": code, "message": message})
    encoded = _field_varint(1, code) + _field_bytes(2, message.encode())
    if retry_after is not None:
        encoded += _field_bytes(3, _field_bytes(1, _RETRY_INFO.encode()) + _field_bytes(2, retry_info(retry_after)))
    return encoded


def retry_info(seconds: int) -> bytes:
    """A ``google.rpc.RetryInfo`` asking to wait ``seconds``."""
    return _field_bytes(1, _field_varint(1, seconds))  # retry_delay: a Duration of that many seconds


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


# -- protobuf ---------------------------------------------------------------------------------------


def _from_protobuf(data: bytes) -> Decoded:
    # Imported here: the gateway's extra; the exporter never needs it.
    from google.protobuf.message import DecodeError  # noqa: PLC0415
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: PLC0415

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, RecursionError) as exc:
        raise Undecodable(f"the body is not an OTLP protobuf trace request: {exc}") from None
    return from_request(request)


def from_request(request: Any) -> Decoded:
    """An ``ExportTraceServiceRequest`` already parsed (OTLP/gRPC) as spans; raises :class:`Undecodable`."""
    decoded = Decoded()
    try:
        for resource_spans in request.resource_spans:
            resource = Resource(_pb_attributes(resource_spans.resource.attributes), resource_spans.schema_url)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope
                instrumentation = InstrumentationScope(
                    scope.name, scope.version or None, scope_spans.schema_url or None, _pb_attributes(scope.attributes)
                )
                for span in scope_spans.spans:
                    try:
                        built = _pb_span(span, resource, instrumentation, decoded)
                    except (TypeError, ValueError, RecursionError) as exc:
                        decoded.reject(f"a span could not be read: {exc}")
                        continue
                    if built is not None:
                        decoded.spans.append(built)
    except (TypeError, ValueError, RecursionError) as exc:
        raise Undecodable(f"the request's resource or scope could not be read: {exc}") from None
    return decoded


def _pb_span(span: Any, resource: Resource, scope: InstrumentationScope, decoded: Decoded) -> ReadableSpan | None:
    trace_id, span_id = _id(span.trace_id, 16), _id(span.span_id, 8)
    if not trace_id or not span_id:
        decoded.reject("a span's trace_id or span_id is missing, all zeros or of the wrong length")
        return None
    parent_id = _id(span.parent_span_id, 8) if span.parent_span_id else 0
    return _span(
        name=span.name,
        ids=(trace_id, span_id, parent_id),
        flags=span.flags,
        trace_state=span.trace_state,
        kind=span.kind,
        times=(span.start_time_unix_nano, span.end_time_unix_nano),
        attributes=_pb_attributes(span.attributes),
        events=[
            Event(event.name, _pb_attributes(event.attributes), event.time_unix_nano or span.start_time_unix_nano)
            for event in span.events
        ],
        links=[
            (_id(link.trace_id, 16), _id(link.span_id, 8), link.trace_state, _pb_attributes(link.attributes))
            for link in span.links
        ],
        status=(span.status.code, span.status.message),
        resource=resource,
        scope=scope,
    )


def _pb_attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    attributes = {}
    for pair in pairs:
        value = _pb_value(pair.value)
        if value is not None:
            attributes[pair.key] = _attribute(value)
    return attributes


_SCALARS = frozenset(("string_value", "int_value", "double_value", "bool_value"))


def _pb_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which in _SCALARS:
        return getattr(value, which)
    if which is None:
        return None
    if which == "array_value":
        return [_pb_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {pair.key: _pb_value(pair.value) for pair in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def _id(raw: bytes, size: int) -> int:
    """The id as an integer; 0 when it is not ``size`` bytes or all zeros (not an id)."""
    return int.from_bytes(raw, "big") if len(raw) == size else 0


# -- JSON -------------------------------------------------------------------------------------------


def _from_json(data: bytes) -> Decoded:
    try:
        request = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Undecodable(f"the body is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise Undecodable("the body is not an OTLP trace request (a JSON object)")
    decoded = Decoded()
    try:
        for resource_spans in _list(_get(request, "resourceSpans", "resource_spans")):
            resource_object = _dict(resource_spans.get("resource"))
            resource = Resource(
                _json_attributes(resource_object.get("attributes")),
                _get(resource_spans, "schemaUrl", "schema_url") or None,
            )
            for scope_spans in _list(_get(resource_spans, "scopeSpans", "scope_spans")):
                scope_object = _dict(scope_spans.get("scope"))
                scope = InstrumentationScope(
                    str(scope_object.get("name") or ""),
                    scope_object.get("version") or None,
                    _get(scope_spans, "schemaUrl", "schema_url") or None,
                    _json_attributes(scope_object.get("attributes")),
                )
                for span in _list(scope_spans.get("spans")):
                    try:
                        built = _json_span(_dict(span), resource, scope, decoded)
                    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
                        decoded.reject(f"a span could not be read: {exc}")
                        continue
                    if built is not None:
                        decoded.spans.append(built)
    except (TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise Undecodable(f"the body is not an OTLP trace request: {exc}") from None
    return decoded


def _json_span(span: dict[str, Any], resource: Resource, scope: InstrumentationScope, decoded: Decoded) -> Any:
    trace_id = _hex_id(_get(span, "traceId", "trace_id"), 16)
    span_id = _hex_id(_get(span, "spanId", "span_id"), 8)
    if not trace_id or not span_id:
        decoded.reject("a span's traceId or spanId is missing, all zeros or not hex of the right length")
        return None
    start = _int(_get(span, "startTimeUnixNano", "start_time_unix_nano"))
    status_object = _dict(span.get("status"))
    return _span(
        name=str(span.get("name") or ""),
        ids=(trace_id, span_id, _hex_id(_get(span, "parentSpanId", "parent_span_id"), 8)),
        flags=_int(span.get("flags")),
        trace_state=str(_get(span, "traceState", "trace_state") or ""),
        kind=_enum(span.get("kind"), _KIND_NAMES),
        times=(start, _int(_get(span, "endTimeUnixNano", "end_time_unix_nano"))),
        attributes=_json_attributes(span.get("attributes")),
        events=[
            Event(
                str(event.get("name") or ""),
                _json_attributes(event.get("attributes")),
                _int(_get(event, "timeUnixNano", "time_unix_nano")) or start,
            )
            for event in map(_dict, _list(span.get("events")))
        ],
        links=[
            (
                _hex_id(_get(link, "traceId", "trace_id"), 16),
                _hex_id(_get(link, "spanId", "span_id"), 8),
                str(_get(link, "traceState", "trace_state") or ""),
                _json_attributes(link.get("attributes")),
            )
            for link in map(_dict, _list(span.get("links")))
        ],
        status=(_enum(status_object.get("code"), _STATUS_NAMES), str(status_object.get("message") or "")),
        resource=resource,
        scope=scope,
    )


def _json_attributes(pairs: Any) -> dict[str, Any]:
    return {key: _attribute(value) for key, value in _json_pairs(pairs).items()}


def _json_pairs(pairs: Any) -> dict[str, Any]:
    attributes = {}
    for pair in map(_dict, _list(pairs)):
        key = pair.get("key")
        value = _json_value(pair.get("value"))
        if isinstance(key, str) and value is not None:
            attributes[key] = value
    return attributes


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        return None
    (which, item), *_ = value.items()
    if which in ("stringValue", "string_value"):
        return str(item)
    if which in ("boolValue", "bool_value"):
        if not isinstance(item, bool):
            raise ValueError(f"boolValue {item!r} is not true or false")
        return item
    if which in ("intValue", "int_value"):
        return _int(item)
    if which in ("doubleValue", "double_value"):
        return float(item)
    if which in ("arrayValue", "array_value"):
        return [_json_value(entry) for entry in _list(_dict(item).get("values"))]
    if which in ("kvlistValue", "kvlist_value"):
        return _json_pairs(_dict(item).get("values"))
    if which in ("bytesValue", "bytes_value"):
        return str(item)  # already base64 in JSON
    return None


def _get(mapping: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = mapping.get(camel)
    return mapping.get(snake) if value is None else value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise ValueError(f"{value!r} is not an integer")
    return int(value)


# The spec writes enums as numbers; protobuf's own JSON mapping (some senders use it) as names.
_KIND_NAMES = {f"SPAN_KIND_{name}": number for number, name in enumerate(_KIND_ORDER)}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _enum(value: Any, names: Mapping[str, int]) -> int:
    return names[value] if isinstance(value, str) and value in names else _int(value)


def _hex_id(value: Any, size: int) -> int:
    if not isinstance(value, str) or len(value) != 2 * size:
        return 0
    try:
        return int(value, 16)
    except ValueError:
        return 0


# -- both -------------------------------------------------------------------------------------------


def _attribute(value: Any) -> Any:
    """An OTLP value as an OpenTelemetry attribute: arrays of one primitive type as tuples, other
    arrays and maps as JSON text (made once, at the top: text nested in text would double its
    escapes at every level). Past orjson's depth limit, a ``TypeError``."""
    if isinstance(value, list):
        kinds = {type(item) for item in value}
        if len(kinds) <= 1 and kinds <= {str, bool, int, float}:
            return tuple(value)
    if isinstance(value, (list, dict)):
        return orjson.dumps(value, default=str).decode()
    return value


def _span(
    *,
    name: str,
    ids: tuple[int, int, int],
    flags: int,
    trace_state: str,
    kind: int,
    times: tuple[int, int],
    attributes: dict[str, Any],
    events: list[Event],
    links: list[tuple[int, int, str, dict[str, Any]]],
    status: tuple[int, str],
    resource: Resource,
    scope: InstrumentationScope,
) -> ReadableSpan:
    trace_id, span_id, parent_id = ids
    trace_flags = TraceFlags(flags & 0xFF)
    state = _trace_state(trace_state)
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=trace_flags, trace_state=state)
    parent = None
    if parent_id:
        remote = bool(flags & _IS_REMOTE) if flags & _HAS_IS_REMOTE else False
        parent = SpanContext(trace_id, parent_id, is_remote=remote, trace_flags=trace_flags)
    start, end = times
    code, message = status
    status_code = _STATUS.get(code, StatusCode.UNSET)
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=attributes,
        events=events,
        links=[
            Link(SpanContext(t, s, is_remote=True, trace_state=_trace_state(ts)), attrs)
            for t, s, ts, attrs in links
            if t and s
        ],
        kind=_KINDS.get(kind, SpanKind.INTERNAL),
        status=Status(status_code, message or None) if status_code is StatusCode.ERROR else Status(status_code),
        start_time=start or None,
        end_time=end or start or None,
        instrumentation_scope=scope,
    )


def _trace_state(text: str) -> TraceState | None:
    if not text:
        return None
    try:
        return TraceState.from_header([text])
    except ValueError:
        return None
