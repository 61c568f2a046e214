"""The encoder, byte for byte."""

import json
import tracemalloc

from otel_langsmith import _ids as ids
from otel_langsmith import _wire as wire
from otel_langsmith.testing import operations_from_multipart, parse_multipart

RUN = {
    "name": "root-chain",
    "run_type": "chain",
    "id": "01a2014a-0435-7ca5-b78d-b74335e212e2",
    "trace_id": "01a2014a-0435-7ca5-b78d-b74335e212e2",
    "dotted_order": "20261122T032557685039Z01a2014a-0435-7ca5-b78d-b74335e212e2",
    "start_time": "2026-11-22T03:25:57.685039+00:00",
    "session_name": "wire-test",
    "inputs": {"q": "hello"},
    "events": [],
    "extra": {"metadata": {"k": 1}},
    "error": "ValueError('boom')",
}


def test_one_run_is_laid_out_exactly_as_the_sdk_does():
    body = wire.multipart_body([wire.encode_run(RUN)], "b0undary")
    main = (
        b'{"name":"root-chain","run_type":"chain","id":"01a2014a-0435-7ca5-b78d-b74335e212e2",'
        b'"trace_id":"01a2014a-0435-7ca5-b78d-b74335e212e2",'
        b'"dotted_order":"20261122T032557685039Z01a2014a-0435-7ca5-b78d-b74335e212e2",'
        b'"start_time":"2026-11-22T03:25:57.685039+00:00","session_name":"wire-test"}'
    )

    def part(name, payload):
        return (
            b"--b0undary\r\n"
            b'Content-Disposition: form-data; name="' + name.encode() + b'"\r\n'
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload + b"\r\n"
        )

    run_id = RUN["id"]
    expected = (
        part(f"post.{run_id}", main)
        + part(f"post.{run_id}.inputs", b'{"q":"hello"}')
        + part(f"post.{run_id}.events", b"[]")
        + part(f"post.{run_id}.extra", b'{"metadata":{"k":1}}')
        + part(f"post.{run_id}.error", b"\"ValueError('boom')\"")
        + b"--b0undary--\r\n"
    )
    assert body == expected


def test_patch_operations_use_patch_part_names():
    segment = wire.multipart_body([wire.encode_run({"id": RUN["id"], "outputs": {"a": 1}}, operation="patch")], "x")
    assert f'name="patch.{RUN["id"]}"'.encode() in segment
    assert f'name="patch.{RUN["id"]}.outputs"'.encode() in segment


def test_hostile_values_are_sanitized_not_raised():
    hostile = {
        "id": RUN["id"],
        "inputs": {
            "surrogate": "a\ud800b",
            "huge": 2**80,
            "nan": float("nan"),
            "inf": float("-inf"),
            "bytes": b"\xff",
            "tuple": (1, 2),
            "set": {3},
        },
    }
    nested: list = []
    cursor = nested
    for _ in range(400):
        cursor.append([])
        cursor = cursor[0]
    hostile["outputs"] = {"deep": nested}
    body = wire.multipart_body([wire.encode_sanitized(hostile)], "bnd")
    ops = operations_from_multipart(parse_multipart(body, wire.content_type("bnd")))
    ((operation, run),) = ops
    assert operation == "post"
    assert run["inputs"] == {
        "surrogate": "a?b",
        "huge": str(2**80),
        "nan": None,
        "inf": None,
        "bytes": "\ufffd",
        "tuple": [1, 2],
        "set": [3],
    }
    depth, value = 0, run["outputs"]["deep"]
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    assert 100 < depth < 400 and isinstance(value, str)


def test_batches_respect_operation_and_byte_limits():
    runs = [wire.encode_run({"id": ids.span_run_id(i), "inputs": {"x": "y" * 1000}}) for i in range(7)]
    size = runs[0].multipart_size
    body = wire.multipart_body(runs[:1], wire.new_boundary())
    assert len(body) - len(b"--") - 32 - len(b"--\r\n") <= size < len(body) + 40  # a close upper bound
    assert [len(b) for b in wire.batches(runs, max_operations=3, max_bytes=10**6)] == [3, 3, 1]
    assert [len(b) for b in wire.batches(runs, max_operations=100, max_bytes=2 * size + 1)] == [2, 2, 2, 1]
    # One run larger than the byte limit still travels, alone.
    assert [len(b) for b in wire.batches(runs[:2], max_operations=100, max_bytes=size // 2)] == [1, 1]


def test_the_batch_endpoint_body_puts_fields_back_inline():
    encoded = [wire.encode_run(RUN), wire.encode_run({"id": "x", "outputs": {"a": 1}}, operation="patch")]
    assert json.loads(wire.batch_body(encoded)) == {"post": [RUN], "patch": [{"id": "x", "outputs": {"a": 1}}]}


def test_encoded_runs_know_their_payload_size():
    encoded = wire.encode_run(RUN)
    assert encoded.size == sum(len(payload) for _, payload in encoded.parts)
    # The multipart size is the body's length less the closing line, but that every part's
    # Content-Length is budgeted ten digits.
    body = wire.multipart_body([encoded], wire.new_boundary())
    framed = len(body) - len(b"----\r\n") - 32
    unused_digits = sum(10 - len(str(len(payload))) for _, payload in encoded.parts)
    assert encoded.multipart_size == framed + unused_digits
    assert [field for field, _ in encoded.parts] == ["", "inputs", "events", "extra", "error"]
    assert (encoded.run_id, encoded.trace_id) == (RUN["id"], RUN["trace_id"])


def test_dumps_is_compact_json():
    assert (
        wire.dumps({"a": [1, "é"]}) == json.dumps({"a": [1, "é"]}, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_encoded_runs_hold_only_their_own_bytes():
    # orjson's output keeps the buffer it reserved, 4 KiB at the least: a queue of small runs that
    # each held that much would hold ten times what it counts.
    runs = [{**RUN, "id": f"01a2014a-0435-7ca5-b78d-{index:012d}"} for index in range(300)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        encoded = [wire.encode_run(run) for run in runs]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    payload = sum(run.size for run in encoded)
    assert held < 3 * payload + 600 * len(encoded), (held, payload)
