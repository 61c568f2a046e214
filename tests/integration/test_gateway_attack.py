"""The gateway under attack: hostile and careless senders, at the worst moment.

Real gateway processes (``GatewayProcess``) and real sockets on loopback, a real local LangSmith
(``LangSmithReceiver``) behind them. Each test holds one promise of docs/gateway.md against a
sender that tries to break it: a correct status for every request (never a hang beyond the idle
timeout, never a 5xx for a client's mistake), the other requests and tenants served meanwhile, no
span lost that was answered 200, no API key in logs or answers, memory bounded.

A comment that begins "Found here:" names a bug these attacks found in the first version of the
gateway, and what the test now holds it to.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import threading
import time
import uuid

import pytest
import requests
import zstandard
from helpers import OTLP_START_NS as START_NS
from helpers import GatewayProcess, address, closed_port_url, otlp_request, padded, rss

from otel_langsmith.testing import LangSmithReceiver

pytestmark = pytest.mark.timeout(60)

KEY = "lsv2-attack-key-0123456789"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


# -- bodies ----------------------------------------------------------------------------------------


def protobuf(*spans: tuple[int, int, int], unknown: bytes = b"") -> bytes:
    """An ``ExportTraceServiceRequest`` of (trace id, span id, parent span id or 0) spans."""
    return otlp_request(spans).SerializeToString() + unknown


def roots(*ids: int, unknown: bytes = b"") -> bytes:
    """Root spans, each a trace of its own: run id = trace id = ``id``."""
    return protobuf(*((i, i, 0) for i in ids), unknown=unknown)


def run_id(number: int) -> str:
    return str(uuid.UUID(int=number))


def json_span(number: int, **fields: object) -> dict:
    span = {
        "traceId": f"{number:032x}",
        "spanId": f"{number:016x}",
        "name": f"json-{number}",
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 1_000_000_000),
    }
    span.update(fields)
    return span


def json_request(*spans: dict, resource: object = None, scope: object = None) -> bytes:
    scope_spans = {"scope": scope if scope is not None else {"name": "attack"}, "spans": list(spans)}
    resource_spans = {"resource": resource if resource is not None else {}, "scopeSpans": [scope_spans]}
    return json.dumps({"resourceSpans": [resource_spans]}).encode()


def streamed(body: bytes) -> bytes:
    """A zstd frame without its content size, as streaming compressors write it."""
    compressor = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    return compressor.compress(body) + compressor.flush()


def padded_to(size: int, ids: tuple[int, ...]) -> bytes:
    """A protobuf request of exactly ``size`` bytes: its spans plus an unknown field of zeros."""
    return padded(roots(*ids), size)


# -- raw HTTP --------------------------------------------------------------------------------------


def request_bytes(body: bytes, headers: dict[str, str], path: str = "/v1/traces", method: str = "POST") -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"{method} {path} HTTP/1.1\r\nHost: gateway\r\n{lines}Content-Length: {len(body)}\r\n\r\n".encode() + body


def read_responses(sock: socket.socket, count: int, timeout: float) -> list[tuple[int, dict[str, str], bytes]]:
    """Up to ``count`` responses read off ``sock`` within ``timeout`` seconds (fewer when it closes)."""
    deadline = time.monotonic() + timeout
    buffer = b""
    responses = []
    while len(responses) < count:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buffer[:head_end].decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
            length = int(headers.get("content-length", "0"))
            status = int(head[0].split()[1])
            if status == 100:
                buffer = buffer[head_end + 4 :]
                continue
            if len(buffer) >= head_end + 4 + length:
                responses.append((status, headers, buffer[head_end + 4 : head_end + 4 + length]))
                buffer = buffer[head_end + 4 + length :]
                continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not data:
            break
        buffer += data
    return responses


def exchange(url: str, data: bytes, *, count: int = 1, timeout: float = 3.0, shut_write: bool = False):
    """Send ``data`` on a new connection; the responses that come back within ``timeout``."""
    with socket.create_connection(address(url)) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        return read_responses(sock, count, timeout)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10) -> requests.Response:
    return requests.post(f"{url}/v1/traces", data=body, headers=headers, timeout=timeout)


def environment(receiver: LangSmithReceiver, **extra: str) -> dict[str, str]:
    return {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY, **extra}


# -- the slow loris: runs beside the other tests, checked by the last one --------------------------


class SlowLoris:
    """A sender that trickles its request headers, a byte a second, on one connection to a gateway
    of its own, from the first test that asks for it to the end of the module."""

    def __init__(self, url: str) -> None:
        self.started = time.monotonic()
        self.closed_after: float | None = None  # seconds until the gateway closed or answered
        self._stop = threading.Event()
        self._sock = socket.create_connection(address(url))
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        data = b"POST /v1/traces HTTP/1.1\r\nHost: g\r\nX-Pad: " + b"a" * 10_000
        self._sock.settimeout(0.0)
        for byte in data:
            try:
                self._sock.send(bytes([byte]))
                if self._sock.recv(1024) is not None:  # an answer or the end of the connection
                    self.closed_after = time.monotonic() - self.started
                    return
            except BlockingIOError:
                pass  # nothing to read: still open
            except OSError:
                self.closed_after = time.monotonic() - self.started
                return
            if self._stop.wait(1.0):
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture(scope="module")
def slow_loris():
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            loris = SlowLoris(gateway.url)
            yield loris
            loris.close()
            gateway.stop()


# -- HTTP framing ------------------------------------------------------------------------------------


def test_hostile_framing_gets_correct_answers_and_every_span_answered_200_arrives(slow_loris):
    taken: set[int] = set()  # root ids of requests answered 200
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--max-body-bytes", "100000", env=environment(receiver)) as gateway:
            url = gateway.url
            # Pipelined: three requests in one write on one keep-alive connection, three answers in order.
            pipelined = (
                request_bytes(roots(1), PROTOBUF)
                + request_bytes(roots(2), PROTOBUF)
                + request_bytes(b"", {"Connection": "close"}, "/healthz", "GET")
            )
            answers = exchange(url, pipelined, count=3)
            assert [status for status, _, _ in answers] == [200, 200, 200]
            assert answers[2][2] == b'{"status":"alive"}'
            taken |= {1, 2}

            # A Content-Length longer than the body, the sender then half-closes: 400 at once, not taken.
            lying = request_bytes(roots(3), PROTOBUF)[:-5]
            started = time.monotonic()
            assert [a[0] for a in exchange(url, lying, shut_write=True)] == [400]
            assert time.monotonic() - started < 2

            # A Content-Length shorter than the body: the rest is the next "request", a 400, not a hang.
            body = roots(4)
            short = request_bytes(body, PROTOBUF).replace(b"Content-Length: %d" % len(body), b"Content-Length: 3")
            statuses = [a[0] for a in exchange(url, short, count=2)]
            assert statuses[0] == 400 and all(s in (400, 413) for s in statuses), statuses

            # Chunked: a valid body in two chunks with a chunk extension; then a chunk size past the limit.
            data = roots(5)
            chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in (data[:7], data[7:])) + b"0\r\n\r\n"
            head = b"POST /v1/traces HTTP/1.1\r\nHost: g\r\nContent-Type: application/x-protobuf\r\n"
            chunked = head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks
            assert [a[0] for a in exchange(url, chunked)] == [200]
            taken.add(5)
            huge_chunk = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 30 + b"\r\n"
            assert [a[0] for a in exchange(url, huge_chunk)] == [413]
            not_hex = head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
            assert [a[0] for a in exchange(url, not_hex)] == [400]

            # Expect: 100-continue is honoured.
            expect = request_bytes(roots(6), {**PROTOBUF, "Expect": "100-continue"})
            assert [a[0] for a in exchange(url, expect)] == [200]
            taken.add(6)

            # Other paths: 404 in OTLP's error body, never a hang.
            assert [a[0] for a in exchange(url, request_bytes(b"", {}, "/v1/traces", "GET"))] == [404]
            assert [a[0] for a in exchange(url, request_bytes(roots(7), PROTOBUF, "/v1/metrics"))] == [404]

            # Unknown or stacked Content-Encoding with a valid body: 400 saying why.
            for encoding in ("br", "gzip, identity", "compress"):
                answer = post(url, gzip.compress(roots(8)), {**PROTOBUF, "Content-Encoding": encoding})
                assert answer.status_code == 400, encoding
                assert b"Content-Encoding" in answer.content
            # Unknown Content-Type with a valid body: 400.
            assert post(url, roots(8), {"Content-Type": "application/grpc"}).status_code == 400

            # Exactly the limit, before and after decompression: taken; one byte more: 413.
            compressor = zstandard.ZstdCompressor()
            encoders = {"": lambda b: b, "gzip": gzip.compress, "zstd": compressor.compress, "zstd-stream": streamed}
            number = 10
            for name, encode in encoders.items():
                encoding = name.split("-")[0]
                headers = {**PROTOBUF, **({"Content-Encoding": encoding} if encoding else {})}
                at = post(url, encode(padded_to(100_000, (number,))), headers)
                over = post(url, encode(padded_to(100_001, (number + 1,))), headers)
                assert (at.status_code, over.status_code) == (200, 413), name
                taken.add(number)
                number += 2

            # Far over the limit: 413 reaches the sender (it is not left writing into a closed socket).
            assert post(url, b"\x00" * 8_000_000, PROTOBUF).status_code == 413

            # HTTP/1.0 without a Host header.
            http10 = b"POST /v1/traces HTTP/1.0\r\nContent-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n"
            assert [a[0] for a in exchange(url, http10 % len(roots(30)) + roots(30))] == [200]
            taken.add(30)

            assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
            assert receiver.wait_for_runs(len(taken), timeout=15)
            time.sleep(0.3)
            status, logged = gateway.stop()
        runs = receiver.runs
        assert receiver.rejected == []
    assert status == 0, logged
    assert "Traceback" not in logged, logged
    assert set(runs) == {run_id(number) for number in taken}


# -- hostile values ----------------------------------------------------------------------------------


def test_hostile_values_are_taken_or_rejected_per_span_and_never_fail_the_request():
    hostile = {
        1: json_span(1, startTimeUnixNano=10**30, endTimeUnixNano=str(10**40)),
        2: json_span(2, startTimeUnixNano=-5, endTimeUnixNano=-1),
        3: json_span(3, endTimeUnixNano=str(START_NS - 10**12)),  # ends before it starts
        4: json_span(4, attributes=[{"key": "big", "value": {"intValue": str(10**30)}}]),
        5: json_span(5, attributes=[{"key": "nan", "value": {"doubleValue": "NaN"}}]),
        6: json_span(6, attributes=[{"key": "inf", "value": {"doubleValue": "-Infinity"}}]),
        7: json_span(7, name={"not": "a string"}, kind=10**30, flags=-1, traceState="=,,\n"),
        8: json_span(8, events=[{"name": ["x"], "timeUnixNano": str(10**25)}]),
        9: json_span(9, links=[{"traceId": "zz", "spanId": 5, "attributes": "nope"}]),
        10: json_span(10, attributes=[{"key": 5, "value": {"stringValue": "x"}}, {"key": "k", "value": []}]),
        11: json_span(11, startTimeUnixNano=1.5e18, endTimeUnixNano=1.6e18),
        12: json_span(12, status={"code": "STATUS_CODE_ERROR", "message": {"m": 1}}),
    }
    rejected_one = json_span(13, status={"code": "not a code"})
    wrong_types = [
        b'{"resourceSpans": {}}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": null}]}]}',
        b'{"resourceSpans": [{"scopeSpans": "x"}]}',
    ]
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            answer = post(gateway.url, json_request(*hostile.values(), rejected_one), JSON)
            # Duplicate keys: the last wins (as in any JSON parser that takes them).
            dup = (
                b'{"resourceSpans": [], "resourceSpans": %s}'
                % json.dumps([{"scopeSpans": [{"spans": [json_span(20)]}]}]).encode()
            )
            duplicated = post(gateway.url, dup, JSON)
            odd = [post(gateway.url, body, JSON).status_code for body in wrong_types]
            not_objects = [post(gateway.url, body, JSON).status_code for body in (b"[]", b"5", b'"x"', b"NaN")]
            deep_resource = post(gateway.url, b'{"resourceSpans": [' * 5000 + b"]}" * 5000, JSON)
            bad_scope = json_request(json_span(21), scope={"name": {"x": 1}, "version": [1], "attributes": 5})
            scope_answer = post(gateway.url, bad_scope, JSON)
            # Protobuf: unknown fields at the top level are skipped.
            unknown = post(gateway.url, roots(22, unknown=b"\xfa\x07\x03abc"), PROTOBUF)
            expected = {*hostile, 20, 21, 22}
            arrived = receiver.wait_for_runs(len(expected), timeout=15)
            status, logged = gateway.stop()
        runs = receiver.runs
        assert receiver.rejected == [], receiver.rejected
        assert receiver.problems() == []
    assert answer.status_code == 200, answer.text
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert duplicated.status_code == 200 and odd == [200, 200, 200]
    assert not_objects == [400, 400, 400, 400]
    assert deep_resource.status_code == 400
    assert scope_answer.status_code in (200, 400)
    assert unknown.status_code == 200
    assert arrived, sorted(runs)
    assert status == 0 and "Traceback" not in logged, logged
    assert {run_id(n) for n in expected} - {run_id(13)} <= set(runs)


# -- span structure ----------------------------------------------------------------------------------


def test_cycles_self_parents_and_duplicate_ids_neither_hang_nor_lose_a_span():
    with LangSmithReceiver(api_key=KEY) as receiver:
        env = environment(receiver, OTEL_EXPORTER_LANGSMITH_PARENT_WAIT="1")
        with GatewayProcess(env=env) as gateway:
            answers = [
                post(gateway.url, protobuf((1, 0xA1, 0xA2), (1, 0xA2, 0xA1)), PROTOBUF),  # A <-> B in one request
                post(gateway.url, protobuf((2, 0xB1, 0xB2)), PROTOBUF),  # ... across requests
                post(gateway.url, protobuf((2, 0xB2, 0xB1)), PROTOBUF),
                post(gateway.url, protobuf((3, 0xC1, 0xC1)), PROTOBUF),  # its own parent
                post(
                    gateway.url, protobuf((4, 0xD1, 0xD2), (4, 0xD2, 0xD3), (4, 0xD3, 0xD1), (4, 0xD4, 0xD1)), PROTOBUF
                ),
                post(gateway.url, protobuf((5, 5, 0), (5, 5, 0), (5, 0xE1, 5), (5, 0xE1, 5)), PROTOBUF),  # duplicates
                post(gateway.url, protobuf((5, 0xE1, 5)), PROTOBUF),  # ... and again later
            ]
            span_ids = {0xA1, 0xA2, 0xB1, 0xB2, 0xC1, 0xD1, 0xD2, 0xD3, 0xD4, 0xE1}
            arrived = receiver.wait_for_runs(len(span_ids) + 1, timeout=10)
            health = requests.get(f"{gateway.url}/healthz", timeout=5).status_code
            status, logged = gateway.stop(timeout=20)
        runs = receiver.runs
        assert receiver.rejected == []
    assert [a.status_code for a in answers] == [200] * len(answers)
    assert arrived and health == 200, sorted(runs)
    assert status == 0, logged
    # Every span of a cycle became a run; whatever broke the cycle is a root of its own.
    got = {uuid.UUID(r).int for r in runs}
    assert span_ids | {5} <= got
    assert all(run.get("parent_run_id") != run["id"] for run in runs.values())


# -- chunk sizes -------------------------------------------------------------------------------------


def test_a_negative_chunk_size_is_refused_at_once_not_read_to_the_end_of_the_connection():
    # Found here: _Handler._chunked parses the chunk size with int(..., 16), which takes "-1"; then
    # self.rfile.read(-1) reads until the sender closes the connection: unbounded by
    # --max-body-bytes (memory grows with whatever the sender streams) and no answer until the
    # sender stops. Repro: `printf 'POST /v1/traces HTTP/1.1\r\nHost: g\r\nContent-Type:
    # application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n'; cat /dev/zero` | nc.
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--max-body-bytes", "1000", env=environment(receiver)) as gateway:
            assert gateway.process is not None
            head = b"POST /v1/traces HTTP/1.1\r\nHost: g\r\nContent-Type: application/x-protobuf\r\n"
            baseline = rss(gateway.process.pid)
            with socket.create_connection(address(gateway.url)) as sock:
                sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n")
                # A flood behind it, 48 MB, far past the 1000-byte limit; the gateway should have
                # answered and closed long before.
                sock.settimeout(5)
                block = b"\x00" * (1 << 20)
                try:
                    for _ in range(48):
                        sock.sendall(block)
                except OSError:
                    pass  # the gateway closed the connection: what it should do
                grown = rss(gateway.process.pid) - baseline
                answers = read_responses(sock, 1, 2.0)
            status, logged = gateway.stop()
    assert status == 0, logged
    assert grown < 20_000_000, f"the gateway's memory grew {grown / 1e6:.0f} MB reading a body over a 1000-byte limit"
    assert [a[0] for a in answers] in ([400], [413]), answers


def test_a_content_length_of_other_digits_or_thousands_of_them_is_a_4xx_and_the_next_request_is_served():
    # Found here: str.isdigit() takes "\u00b2" (a latin-1 byte 0xB2 in the header) and int() refuses
    # it, as it refuses a number of 5,000 digits: the handler raised and the sender's connection was
    # dropped without an answer.
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            head = b"POST /v1/traces HTTP/1.1\r\nHost: g\r\nContent-Type: application/x-protobuf\r\n"
            superscript = exchange(gateway.url, head + b"Content-Length: \xb2\r\n\r\nxx")
            thousands = exchange(gateway.url, head + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n")
            after = exchange(gateway.url, request_bytes(roots(1), PROTOBUF))
            status, logged = gateway.stop()
        delivered = set(receiver.runs)
    assert status == 0, logged
    assert [a[0] for a in superscript] == [400], superscript
    assert [a[0] for a in thousands] == [413], thousands
    assert [a[0] for a in after] == [200] and run_id(1) in delivered


# -- gzip members and zstd frames --------------------------------------------------------------------


def test_every_gzip_member_and_every_zstd_frame_of_a_body_is_read():
    # Found here: _otlp.decompress reads only the first gzip member (zlib.decompressobj(47).decompress
    # stops at the end of a member and leaves the rest in unused_data) and only the first zstd
    # frame (stream_reader(..., read_across_frames=False) is the default). A body of two members
    # or two frames is valid gzip / zstd (gzip -c a >x; gzip -c b >>x; zstd likewise), and two
    # protobuf messages concatenated are one message with both's spans: the gateway answers 200
    # and silently drops the spans of the second member / frame.
    compressor = zstandard.ZstdCompressor()
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            gzipped = post(
                gateway.url,
                gzip.compress(roots(1, 2)) + gzip.compress(roots(3, 4)),
                {**PROTOBUF, "Content-Encoding": "gzip"},
            )
            zstd = post(
                gateway.url,
                compressor.compress(roots(5, 6)) + compressor.compress(roots(7, 8)),
                {**PROTOBUF, "Content-Encoding": "zstd"},
            )
            receiver.wait_for_runs(8, timeout=3)
            status, _ = gateway.stop()
        got = set(receiver.runs)
    assert status == 0
    for answer, numbers in ((gzipped, (1, 2, 3, 4)), (zstd, (5, 6, 7, 8))):
        if answer.status_code == 200:  # then every span of the body must arrive
            assert {run_id(n) for n in numbers} <= got, f"answered 200, arrived {sorted(got)}"
        else:
            assert answer.status_code == 400


# -- truncated bodies --------------------------------------------------------------------------------


def test_a_truncated_compressed_body_is_400_not_200():
    # Found here: a zstd body cut in the middle (a proxy that truncates, a sender killed mid-write with
    # chunked encoding) is not an error for stream_reader().read(): it returns what it could
    # decompress (here nothing), the empty request decodes as zero spans, and the gateway answers
    # 200: the sender drops the spans as delivered. A truncated gzip body cut mid-stream fails to
    # parse only by luck (decompressobj does not check that the stream ended either).
    body = roots(*range(100, 400))
    packed = zstandard.ZstdCompressor().compress(body)
    zipped = gzip.compress(body)
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            zstd = post(gateway.url, packed[: len(packed) // 2], {**PROTOBUF, "Content-Encoding": "zstd"})
            gz = post(gateway.url, zipped[: len(zipped) // 2], {**PROTOBUF, "Content-Encoding": "gzip"})
            assert gateway.stop()[0] == 0
    assert gz.status_code == 400
    assert zstd.status_code == 400, f"a truncated zstd body was answered {zstd.status_code}"


# -- readiness and wrong keys ------------------------------------------------------------------------


def test_a_request_with_a_wrong_key_does_not_make_the_whole_gateway_unready():
    # Found here: Gateway.ready() is False when *any* tenant's pipeline has endpoint_down, and a tenant
    # whose key LangSmith refuses (401) stays endpoint_down for good. So any client that can reach
    # the gateway takes it out of a load balancer's rotation with one POST carrying a made-up
    # x-api-key (answered 200), although LangSmith answers and the gateway's own tenant delivers.
    # Repro: curl -XPOST -H 'x-api-key: nonsense' -H 'Content-Type: application/json'
    # -d '{"resourceSpans":[...one span...]}' :4318/v1/traces; curl :4318/readyz -> 503.
    wrong = "lsv2-made-up-secret-XYZW"
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            before = requests.get(f"{gateway.url}/readyz", timeout=5).status_code
            assert post(gateway.url, roots(1), PROTOBUF).status_code == 200
            attack = post(gateway.url, roots(2), {**PROTOBUF, "x-api-key": wrong})
            assert receiver.wait_for_runs(1, timeout=10)
            deadline = time.monotonic() + 6
            while not receiver.rejected and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1)
            after = requests.get(f"{gateway.url}/readyz", timeout=5)
            good = post(gateway.url, roots(3), PROTOBUF)
            assert receiver.wait_for_runs(2, timeout=10)
            status, logged = gateway.stop()
    assert status == 0
    assert before == 200 and attack.status_code == 200 and good.status_code == 200
    assert wrong not in logged and wrong not in attack.text, "a key was logged or echoed"
    assert after.status_code == 200, f"one request with a wrong key made /readyz answer: {after.text}"


# -- tenant slots and made-up keys -------------------------------------------------------------------


def test_made_up_keys_cannot_lock_the_gateway_s_own_key_out():
    # Found here: a tenant whose key LangSmith refuses keeps its slot for good (its pipeline stays
    # endpoint_down, so _retire_idle never takes it), and the gateway's own tenant, idle, is the
    # first retired to make room. 32 POSTs with 32 made-up keys (each answered 200) therefore
    # leave every slot to a dead tenant: from then on every request, with the gateway's own key
    # included, gets 503 until the process restarts. Repro: for i in $(seq 32); do curl -XPOST
    # -H "x-api-key: junk$i" -H 'Content-Type: application/json' -d '{...one span...}'
    # :4318/v1/traces; done; then any request without x-api-key -> 503 "every tenant slot is busy".
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            assert post(gateway.url, roots(1), PROTOBUF).status_code == 200
            assert receiver.wait_for_runs(1, timeout=10)
            junk = [post(gateway.url, roots(100 + i), {**PROTOBUF, "x-api-key": f"junk-{i}"}) for i in range(32)]
            deadline = time.monotonic() + 8
            while len(receiver.rejected) < 32 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            own = [post(gateway.url, roots(2 + i), PROTOBUF).status_code for i in range(3)]
            status, _ = gateway.stop()
    assert status == 0
    assert [a.status_code for a in junk] == [200] * 32
    assert own == [200, 200, 200], f"the gateway's own key was refused after 32 made-up keys: {own}"


# -- other methods -----------------------------------------------------------------------------------


def test_other_methods_get_a_4xx_in_otlp_s_error_body_not_a_5xx():
    # Found here: PUT, DELETE, PATCH, HEAD and OPTIONS fall through to http.server's default, a
    # "501 Unsupported method" with an HTML page: a 5xx for a client's mistake, which retrying
    # OTLP senders (they retry every 5xx) send again and again, and not the google.rpc.Status body
    # the table promises for errors. 405 Method Not Allowed (with Allow) is the answer.
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            answers = {}
            for method in ("PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
                with socket.create_connection(address(gateway.url), timeout=2) as sock:
                    sock.sendall(request_bytes(roots(1), PROTOBUF, "/v1/traces", method))
                    first = sock.recv(64)  # the status line (a HEAD answer has no body to wait for)
                answers[method] = int(first.split()[1]) if first.startswith(b"HTTP/") else None
            healthy = requests.get(f"{gateway.url}/healthz", timeout=5).status_code
            assert gateway.stop()[0] == 0
    assert healthy == 200
    assert all(status is not None and 400 <= status < 500 for status in answers.values()), answers


# -- a GET with a body -------------------------------------------------------------------------------


def test_a_get_with_a_body_does_not_desynchronise_the_connection():
    # Found here: do_GET never reads a request body, so on a keep-alive connection the bytes of a GET's
    # body (Content-Length: 5, "hello") are parsed as the start of the next request: the next
    # request on the connection gets "501 Unsupported method ('helloGET')" instead of its answer.
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            data = (
                b"GET /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 5\r\n\r\nhello"
                + b"GET /healthz HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"
            )
            answers = exchange(gateway.url, data, count=2)
            assert gateway.stop()[0] == 0
    assert [status for status, _, _ in answers] == [200, 200], answers


# -- header values in UTF-8 --------------------------------------------------------------------------


def test_a_non_ascii_project_header_names_the_project_the_sender_meant():
    # Found here: http.server decodes header values as ISO-8859-1, and Tenants.get uses the result as is:
    # a sender whose Langsmith-Project header is the UTF-8 bytes of "café-研究" (every OTLP SDK and
    # the Collector write header values as UTF-8) gets its runs in a project named "cafÃ©-ç ...".
    project = "café-研究"
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            data = request_bytes(roots(1), PROTOBUF).replace(
                b"\r\n\r\n", b"\r\nLangsmith-Project: " + project.encode() + b"\r\n\r\n", 1
            )
            answers = exchange(gateway.url, data)
            assert receiver.wait_for_runs(1, timeout=10)
            assert gateway.stop()[0] == 0
        sessions = {run["session_name"] for run in receiver.runs.values()}
    assert [a[0] for a in answers] == [200]
    assert sessions == {project}


# -- keys, tenants and headers -----------------------------------------------------------------------


def test_hostile_tenant_headers_never_crash_it_and_keys_never_reach_logs_or_answers():
    secret = "lsv2-tenant-secret-QRST"
    folded = "lsv2-folded-secret-ABCD"
    with LangSmithReceiver(api_key=None) as receiver:
        with GatewayProcess("--report-every", "0.5", env=environment(receiver)) as gateway:
            huge_project = post(gateway.url, roots(1), {**PROTOBUF, "Langsmith-Project": "p" * 60_000})
            keyed = post(gateway.url, roots(2), {**PROTOBUF, "x-api-key": secret, "Langsmith-Project": "x\ty"})
            # A key continued on a second header line (obs-fold): a key LangSmith can never take.
            data = request_bytes(roots(3), PROTOBUF).replace(
                b"\r\n\r\n", f"\r\nx-api-key: {folded}\r\n  EFGH\r\n\r\n".encode(), 1
            )
            fold = exchange(gateway.url, data)
            empty_key = post(gateway.url, roots(4), {**PROTOBUF, "x-api-key": ""})  # falls back to the gateway's
            too_many_headers = exchange(
                gateway.url,
                request_bytes(roots(5), {**PROTOBUF, **{f"x-h{i}": "v" for i in range(200)}}),
            )
            assert receiver.wait_for_runs(2, timeout=10)
            time.sleep(1.2)
            health = requests.get(f"{gateway.url}/healthz", timeout=5).status_code
            status, logged = gateway.stop(timeout=30)
        answers = b"".join(a.content for a in (huge_project, keyed, empty_key))
        answers += b"".join(body for _, _, body in fold + too_many_headers)
    assert keyed.status_code == 200 and empty_key.status_code == 200 and health == 200
    assert huge_project.status_code in (200, 400, 431)
    assert [a[0] for a in too_many_headers] == [431]
    assert [a[0] for a in fold] in ([200], [400])
    assert status == 0, logged
    for key in (secret, folded, KEY):
        assert key not in logged, f"{key} logged"
        assert key.encode() not in answers


# -- connections -------------------------------------------------------------------------------------


def test_concurrent_senders_at_the_connection_limit_are_answered_and_none_is_lost():
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            held = []
            for _ in range(60):  # paced: a burst overflows the listen backlog (see the backlog test)
                held.append(socket.create_connection(address(gateway.url)))
                time.sleep(0.01)
            time.sleep(0.3)
            results: dict[int, int] = {}

            def send(number: int) -> None:
                while True:  # an OTLP sender: a 503 is retried
                    answer = post(gateway.url, roots(number), PROTOBUF)
                    if answer.status_code != 503:
                        results[number] = answer.status_code
                        return
                    assert answer.headers.get("Retry-After") == "2"
                    time.sleep(0.05)

            threads = [threading.Thread(target=send, args=(1000 + i,)) for i in range(12)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            for sock in held[:20]:  # room frees up while they retry
                sock.close()
            for thread in threads:
                thread.join(20)
            arrived = receiver.wait_for_runs(12, timeout=10)
            for sock in held[20:]:
                sock.close()
            status, logged = gateway.stop()
    assert results == {1000 + i: 200 for i in range(12)}
    assert arrived and status == 0, logged


# -- a burst of connections --------------------------------------------------------------------------


def test_a_burst_of_connections_is_accepted_at_once():
    # Found here: GatewayServer keeps socketserver's request_queue_size of 5: the listen backlog holds 5
    # connections not yet accepted, and one accept per select() wake-up cannot keep up with a
    # burst, so the kernel drops the SYNs beyond it and the senders' connects wait out TCP's
    # retransmission (1 s, then 3 s, 7 s...). Thirty senders connecting at once (a Collector
    # fleet after a deploy, a sidecar's pool of 30 connections) take seconds to be let in,
    # although the gateway promises to serve 64 and to answer the 65th with 503 at once.
    # Repro: python -c "import socket,time; t=time.time(); [socket.create_connection(('127.0.0.1',
    # 4318)) for _ in range(30)]; print(time.time()-t)" -> about 4 s instead of a few ms.
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            started = time.monotonic()
            held = [socket.create_connection(address(gateway.url)) for _ in range(30)]
            took = time.monotonic() - started
            for sock in held:
                sock.close()
            assert gateway.stop()[0] == 0
    assert took < 0.8, f"30 connections took {took:.1f}s to be accepted"


# -- SIGTERM -----------------------------------------------------------------------------------------


def test_sigterm_while_a_large_request_is_read_lets_it_finish_and_delivers_it():
    body = roots(*range(1, 2001))
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--drain", "6", env=environment(receiver)) as gateway:
            assert gateway.process is not None
            with socket.create_connection(address(gateway.url)) as sock:
                data = request_bytes(body, PROTOBUF)
                sock.sendall(data[: len(data) // 2])
                time.sleep(0.3)
                gateway.process.send_signal(signal.SIGTERM)
                time.sleep(0.3)
                gateway.process.send_signal(signal.SIGTERM)  # twice, as an impatient operator does
                # A new connection is no longer taken.
                time.sleep(0.2)
                try:
                    with socket.create_connection(address(gateway.url), timeout=2) as late:
                        late.sendall(request_bytes(roots(5000), PROTOBUF))
                        refused = read_responses(late, 1, 2)
                except OSError:
                    refused = []
                sock.sendall(data[len(data) // 2 :])
                answers = read_responses(sock, 1, 5)
            status, logged = gateway.stop()
            arrived = receiver.wait_for_runs(2000, timeout=1)
    assert [a[0] for a in answers] == [200], logged
    assert "connection: close" in {f"{k}: {v}".lower() for k, v in answers[0][1].items()}
    assert all(a[0] == 503 for a in refused)
    assert status == 0, logged
    assert arrived and run_id(5000) not in receiver.runs


def test_sigterm_twice_with_langsmith_down_spools_everything_answered_200(tmp_path):
    spool = tmp_path / "spool"
    with GatewayProcess(
        "--spool-dir",
        str(spool),
        "--drain",
        "3",
        env={"LANGSMITH_ENDPOINT": closed_port_url(), "LANGSMITH_API_KEY": KEY},
    ) as gateway:
        assert gateway.process is not None
        answers = [post(gateway.url, roots(i), PROTOBUF).status_code for i in range(1, 21)]
        gateway.process.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        gateway.process.send_signal(signal.SIGTERM)
        status, logged = gateway.stop()
    assert answers == [200] * 20 and status == 0, logged
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--spool-dir", str(spool), env=environment(receiver)) as restarted:
            arrived = receiver.wait_for_runs(20, timeout=10)
            assert restarted.stop()[0] == 0
    assert arrived and set(receiver.runs) == {run_id(i) for i in range(1, 21)}


# -- a spool claim left by a killed process of the same pid ------------------------------------------


def test_a_spool_file_claimed_by_a_killed_gateway_with_the_same_pid_is_recovered(tmp_path):
    # Found here: a process takes a spool file by renaming it to "<name>.batch.<host>-<pid>.taken" and
    # Spool._abandoned gives a claim of this host back only when its pid differs from our own and
    # is dead. In the Dockerfile's deployment the gateway is the container's PID 1 and a restart
    # keeps the host name: a gateway SIGKILLed (docker stop past its timeout, the OOM killer)
    # while it was sending a spooled batch leaves a claim that its restarted self, PID 1 again,
    # takes for its own live claim: the runs in it are never sent (pending() even counts them).
    # Reproduced here by giving the claim the restarted gateway's own pid, as PID 1 would.
    spool = tmp_path / "spool"
    other = "lsv2-other-tenant"
    down = {"LANGSMITH_ENDPOINT": closed_port_url(), "LANGSMITH_API_KEY": KEY}
    with GatewayProcess("--spool-dir", str(spool), "--drain", "2", env=down) as gateway:
        assert post(gateway.url, roots(1, 2, 3), {**PROTOBUF, "x-api-key": other}).status_code == 200
        assert gateway.stop()[0] == 0
    files = list(spool.glob("key-*/*.batch"))
    assert files
    with LangSmithReceiver(api_key=None) as receiver:
        with GatewayProcess("--spool-dir", str(spool), env=environment(receiver)) as restarted:
            assert restarted.process is not None
            host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
            for path in files:  # the claims a killed PID-1 gateway left behind
                os.rename(path, path.with_name(f"{path.name}.{host}-{restarted.process.pid}.taken"))
            # The tenant's next request starts the sending of its spool.
            assert post(restarted.url, roots(9), {**PROTOBUF, "x-api-key": other}).status_code == 200
            arrived = receiver.wait_for_runs(4, timeout=5)
            assert restarted.stop()[0] == 0
        got = set(receiver.runs)
    assert run_id(9) in got
    assert arrived and {run_id(i) for i in (1, 2, 3)} <= got, f"the claimed runs never came: {sorted(got)}"


# -- the slow loris ----------------------------------------------------------------------------------


def test_a_sender_trickling_its_headers_is_closed_after_the_idle_timeout(slow_loris):
    # Found here: the only time limit is the socket timeout (_IDLE, 30 s), which applies to each recv()
    # alone: a sender that trickles a byte of its headers (or of its body, or of chunk trailers)
    # every second is never idle and keeps its connection, and its thread, for ever. 64 such
    # senders, 64 bytes a second in all, hold every connection slot: every other sender gets 503
    # for as long as they like. A request must come whole within a deadline (headers within
    # the idle timeout at most). This test's sender started with the first test of the module.
    # Repro: python - <<<'import socket,time; s=socket.create_connection(("127.0.0.1",4318));
    # [(s.send(b"X"), time.sleep(1)) for _ in range(100)]' -- the connection is still open at 100 s.
    deadline = slow_loris.started + 34
    while slow_loris.closed_after is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slow_loris.closed_after is not None, "a connection trickling its headers was still open after 34 s"
    assert slow_loris.closed_after < 33
