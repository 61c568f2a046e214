"""OTLP bodies to spans: both encodings, hostile values, bounded decompression, the answers."""

from __future__ import annotations

import base64
import gzip
import json

import orjson
import pytest
import zstandard
from google.protobuf.json_format import MessageToDict
from helpers import ended_spans
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_langsmith import _otlp


def traced(tracer) -> None:
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={"http.route": "/chat"}) as root:
        root.add_event("started", {"attempt": 1})
        with tracer.start_as_current_span(
            "chat",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.request.temperature": 0.5,
                "stream": True,
                "gen_ai.request.stop_sequences": ("a", "b"),
            },
        ) as chat:
            chat.set_status(Status(StatusCode.ERROR, "rate limited"))


def as_otlp_json(request) -> dict:
    """OTLP/JSON as the spec writes it: ids in hex (protobuf's JSON mapping would give base64)."""

    def fix(value):
        if isinstance(value, dict):
            return {
                key: base64.b64decode(item).hex() if key in ("traceId", "spanId", "parentSpanId") else fix(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [fix(item) for item in value]
        return value

    return fix(MessageToDict(request))


def summary(span) -> tuple:
    return (
        span.name,
        span.context.trace_id,
        span.context.span_id,
        span.parent.span_id if span.parent else None,
        span.kind,
        span.start_time,
        span.end_time,
        dict(span.attributes),
        span.status.status_code,
        span.status.description,
        [(event.name, dict(event.attributes), event.timestamp) for event in span.events],
        dict(span.resource.attributes),
        span.instrumentation_scope.name,
    )


def test_protobuf_and_json_decode_to_the_spans_the_sdk_ended():
    spans = ended_spans(traced)
    request = encode_spans(spans)
    from_protobuf = _otlp.decode(request.SerializeToString(), "application/x-protobuf")
    from_json = _otlp.decode(orjson.dumps(as_otlp_json(request)), "application/json; charset=utf-8")
    expected = sorted(map(summary, spans))
    assert sorted(map(summary, from_protobuf.spans)) == expected
    assert sorted(map(summary, from_json.spans)) == expected
    assert from_protobuf.rejected == from_json.rejected == 0


def json_request(*spans: dict) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()


GOOD = {
    "traceId": "5b8efff798038103d269b633813fc60c",
    "spanId": "eee19b7ec3c1b174",
    "name": "ok",
    "startTimeUnixNano": "1544712660000000000",
    "endTimeUnixNano": 1544712661000000000,
}


def test_one_hostile_span_is_rejected_and_named_while_the_others_are_taken():
    hostile = [
        {**GOOD, "spanId": "short"},
        {**GOOD, "traceId": "00000000000000000000000000000000"},
        {**GOOD, "spanId": "zzzzzzzzzzzzzzzz"},
        {**GOOD, "startTimeUnixNano": {"not": "a time"}},
        {**GOOD, "kind": "a kind"},
        {**GOOD, "attributes": [{"key": "b", "value": {"boolValue": "false"}}]},
    ]
    decoded = _otlp.decode(json_request(GOOD, *hostile, GOOD), "application/json")
    assert [span.name for span in decoded.spans] == ["ok", "ok"]
    assert decoded.rejected == len(hostile)
    assert "spanId" in decoded.reason


def test_values_nested_as_deep_as_json_allows_cost_their_span_at_most():
    for depth in (330, 2000):  # what the JSON parser takes; more than it takes
        nested = '{"arrayValue":{"values":[' * depth + '{"stringValue":"x"}' + "]}}" * depth
        deep = json.dumps({**GOOD, "name": "deep", "attributes": [{"key": "deep", "value": "VALUE"}]})
        body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": ["DEEP", GOOD]}]}]})
        body = body.replace('"DEEP"', deep.replace('"VALUE"', nested)).encode()
        try:
            decoded = _otlp.decode(body, "application/json")
        except _otlp.Undecodable:
            assert depth == 2000
            continue
        assert "ok" in [span.name for span in decoded.spans]
        assert len(decoded.spans) + decoded.rejected == 2


def test_json_values_of_every_kind_become_attributes_the_sdk_accepts():
    values = [
        {"key": "s", "value": {"stringValue": "text"}},
        {"key": "i", "value": {"intValue": "9007199254740993"}},
        {"key": "d", "value": {"doubleValue": 1.5}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "a", "value": {"arrayValue": {"values": [{"intValue": 1}, {"intValue": "2"}]}}},
        {"key": "mixed", "value": {"arrayValue": {"values": [{"intValue": 1}, {"stringValue": "x"}]}}},
        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}},
        {"key": "raw", "value": {"bytesValue": "AAE="}},
        {"key": "empty", "value": {}},
        {"key": 7, "value": {"stringValue": "a key that is not a string"}},
    ]
    (span,) = _otlp.decode(json_request({**GOOD, "attributes": values}), "application/json").spans
    assert dict(span.attributes) == {
        "s": "text",
        "i": 9007199254740993,
        "d": 1.5,
        "b": True,
        "a": (1, 2),
        "mixed": '[1,"x"]',
        "kv": '{"k":"v"}',
        "raw": "AAE=",
    }


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b"null", b'{"resourceSpans": 3}', b'{"resourceSpans": [{"scopeSpans": [{"spans": [1, "x"]}]}]}'],
)
def test_json_that_holds_no_spans_decodes_to_none_or_is_undecodable(body):
    try:
        decoded = _otlp.decode(body, "application/json")
    except _otlp.Undecodable:
        return
    assert decoded.spans == []


def test_bodies_that_are_not_otlp_are_undecodable():
    for body, content_type in [(b"\xff\xff\xff", "application/x-protobuf"), (b"{", "application/json")]:
        with pytest.raises(_otlp.Undecodable):
            _otlp.decode(body, content_type)
    with pytest.raises(_otlp.Undecodable, match="Content-Type"):
        _otlp.decode(b"{}", "text/plain")


def test_decompression_is_bounded_by_what_it_produces():
    data = b"x" * 10_000
    assert _otlp.decompress(gzip.compress(data), "gzip", limit=10_000) == data
    assert _otlp.decompress(zstandard.ZstdCompressor().compress(data), "zstd", limit=10_000) == data
    for encoding, packed in [("gzip", gzip.compress(data)), ("zstd", zstandard.ZstdCompressor().compress(data))]:
        with pytest.raises(_otlp.TooLarge):
            _otlp.decompress(packed, encoding, limit=9_999)
    with pytest.raises(_otlp.Undecodable):
        _otlp.decompress(b"not gzip", "gzip", limit=100)
    with pytest.raises(_otlp.Undecodable, match="br"):
        _otlp.decompress(b"", "br", limit=100)


def test_answers_are_otlp_responses_in_the_request_encoding():
    assert _otlp.answer("application/x-protobuf") == b""
    response = ExportTraceServiceResponse.FromString(_otlp.answer("application/x-protobuf", rejected=300, message="m"))
    assert (response.partial_success.rejected_spans, response.partial_success.error_message) == (300, "m")
    assert orjson.loads(_otlp.answer("application/json", rejected=2, message="m")) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "m"}
    }
    assert orjson.loads(_otlp.status("application/json", 3, "bad")) == {"code": 3, "message": "bad"}


def test_nested_arrays_become_json_text_once_not_text_within_text():
    # Text nested in text doubles its escapes at each level: 40 levels would be terabytes.
    spans = ended_spans(lambda tracer: tracer.start_span("nested").end())
    request = encode_spans(spans)
    value = AnyValue(string_value="x")
    for _ in range(40):
        outer = AnyValue()
        outer.array_value.values.append(value)
        value = outer
    attribute = request.resource_spans[0].scope_spans[0].spans[0].attributes.add()
    attribute.key = "deep"
    attribute.value.CopyFrom(value)
    (span,) = _otlp.decode(request.SerializeToString(), "application/x-protobuf").spans
    assert span.attributes["deep"] == "[" * 40 + '"x"' + "]" * 40
