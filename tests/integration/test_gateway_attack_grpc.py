"""The gateway's OTLP/gRPC service and its latest HTTP fixes under attack, at the worst moment.

Real gateway processes (``GatewayProcess`` with ``--grpc-port 0``), real gRPC channels and raw
sockets on loopback, a real local LangSmith (``LangSmithReceiver``) behind them. Each test holds one
promise of docs/gateway.md against a sender that tries to break it: a call answered OK is never
lost, refusals are ones OTLP senders retry, a hostile sender cannot take the service from the
others, memory stays bounded.

A comment that begins "Found here:" names a bug these attacks found in the first version of the
gRPC service and of those fixes, and what the test now holds it to.
"""

from __future__ import annotations

import gzip
import logging
import signal
import socket
import threading
import time
import uuid

import grpc
import pytest
import requests
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status as RpcStatus
from helpers import GatewayProcess, address, otlp_request, padded, rss
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_langsmith.testing import Fault, LangSmithReceiver

pytestmark = pytest.mark.timeout(60)
logger = logging.getLogger(__name__)

KEY = "lsv2-grpc-attack-key-0123"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


# -- requests --------------------------------------------------------------------------------------


def request(*spans: tuple[int, int], pad: int = 0) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` of (span id, parent span id or 0) spans, each span's trace
    id its own span id (a child's parent is never in its trace: it waits for it); ``pad`` bytes of
    attribute on each."""
    return otlp_request(((span_id, span_id, parent_id) for span_id, parent_id in spans), pad=pad)


def roots(*ids: int, pad: int = 0) -> ExportTraceServiceRequest:
    return request(*((i, 0) for i in ids), pad=pad)


def run_id(number: int) -> str:
    return str(uuid.UUID(int=number))


def padded_to(size: int, ids: tuple[int, ...]) -> ExportTraceServiceRequest:
    """Root spans plus an unknown field of zeros: a message of exactly ``size`` bytes."""
    message = ExportTraceServiceRequest.FromString(padded(roots(*ids).SerializeToString(), size))
    assert message.ByteSize() == size
    return message


def environment(receiver: LangSmithReceiver, **extra: str) -> dict[str, str]:
    return {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY, **extra}


def export(address: str, message: ExportTraceServiceRequest, metadata=(), timeout: float = 10, **options):
    """One call on a connection of its own, as another sender's: the response, or the ``grpc.RpcError``.
    (Channels of one process to one address share a connection unless told otherwise.)"""
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        try:
            return TraceServiceStub(channel).Export(message, metadata=metadata, timeout=timeout, **options)
        except grpc.RpcError as error:
            return error


def retry_delay(error: grpc.RpcError) -> float | None:
    """The ``RetryInfo`` delay in a call's ``google.rpc.Status`` details, None without one."""
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    if details is None:
        return None
    for detail in RpcStatus.FromString(details).details:
        if detail.Is(RetryInfo.DESCRIPTOR):
            info = RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


class IdleStreams:
    """``count`` calls of ``Export`` that send their headers and never their message, as a sender
    that hangs (or a network that drops it) mid-call does: a client-streaming call on the unary
    method, whose request iterator blocks until :meth:`close`."""

    def __init__(self, address: str, count: int) -> None:
        self._release = threading.Event()
        self._channel = grpc.insecure_channel(address)
        call = self._channel.stream_unary(
            EXPORT, request_serializer=ExportTraceServiceRequest.SerializeToString, response_deserializer=bytes
        )
        self.calls = [call.future(self._never()) for _ in range(count)]

    def _never(self):
        self._release.wait(60)
        return
        yield  # a generator that yields nothing

    def close(self) -> None:
        self._release.set()
        for call in self.calls:
            call.cancel()
        self._channel.close()


# -- message sizes ---------------------------------------------------------------------------------


def test_messages_at_the_body_limit_are_taken_and_one_byte_more_or_a_gzip_bomb_is_refused():
    limit = 100_000
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--grpc-port", "0", "--max-body-bytes", str(limit), env=environment(receiver)) as gateway:
            grpc_at = gateway.grpc_address
            at_limit = export(grpc_at, padded_to(limit, (1, 2)))
            over = export(grpc_at, padded_to(limit + 1, (3,)))
            # 20 MB of span names that gzip to about 20 KB: small on the wire, refused once inflated.
            bomb = roots(4)
            bomb.resource_spans[0].scope_spans[0].spans[0].name = "n" * 20_000_000
            started = time.monotonic()
            inflated = export(grpc_at, bomb, compression=grpc.Compression.Gzip)
            huge = export(grpc_at, padded_to(30_000_000, (5,)))
            refusing = time.monotonic() - started
            compressed_at_limit = export(grpc_at, padded_to(limit, (6,)), compression=grpc.Compression.Gzip)
            http_at_limit = requests.post(
                f"{gateway.url}/v1/traces", data=padded_to(limit, (7,)).SerializeToString(), headers=PROTOBUF
            ).status_code
            http_gzip_over = requests.post(
                f"{gateway.url}/v1/traces",
                data=gzip.compress(padded_to(limit + 1, (8,)).SerializeToString()),
                headers={**PROTOBUF, "Content-Encoding": "gzip"},
            ).status_code
            arrived = receiver.wait_for_runs(4, timeout=10)
            time.sleep(0.3)
            status, logged = gateway.stop()
        got = set(receiver.runs)
    assert not isinstance(at_limit, grpc.RpcError), at_limit
    for refused in (over, inflated, huge):
        assert isinstance(refused, grpc.RpcError) and refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not isinstance(compressed_at_limit, grpc.RpcError), compressed_at_limit
    assert (http_at_limit, http_gzip_over) == (200, 413)
    assert refusing < 5, f"refusing two oversized messages took {refusing:.1f}s"
    assert arrived and got == {run_id(i) for i in (1, 2, 6, 7)}
    assert status == 0, logged


# -- hostile metadata ------------------------------------------------------------------------------


def test_hostile_metadata_never_fails_the_gateway_and_each_key_s_runs_go_with_that_key_only():
    secret = "lsv2-grpc-tenant-secret-WXYZ"
    keys = [f"lsv2-made-up-{i:04d}" for i in range(40)]
    with LangSmithReceiver(api_key=None) as receiver:
        with GatewayProcess("--grpc-port", "0", "--report-every", "0.5", env=environment(receiver)) as gateway:
            grpc_at = gateway.grpc_address
            answers = {
                # A key as binary metadata is not a key: the gateway's own is used.
                "bin key": export(grpc_at, roots(1), (("x-api-key-bin", b"\xff\x00" + secret.encode()),)),
                "bin project": export(grpc_at, roots(2), (("langsmith-project-bin", "caf\xe9".encode()),)),
                "non-ascii project": export(grpc_at, roots(3), (("langsmith-project", "café-研究"),)),
                "control characters": export(grpc_at, roots(4), (("langsmith-project", "a\tb\x01"),)),
                "huge project": export(grpc_at, roots(5), (("langsmith-project", "p" * 60_000),)),
                "long project": export(grpc_at, roots(6), (("langsmith-project", "q" * 8_000),)),
                "two keys": export(grpc_at, roots(7), (("x-api-key", secret), ("x-api-key", secret))),
                "empty key": export(grpc_at, roots(8), (("x-api-key", ""),)),
            }
            # 40 made-up keys at once: more tenants than the 32 slots. A refusal is retried.
            refusals: list[grpc.StatusCode] = []

            def tenant(index: int) -> None:
                for _ in range(50):
                    answer = export(grpc_at, roots(1000 + index), (("x-api-key", keys[index]),))
                    if not isinstance(answer, grpc.RpcError):
                        return
                    refusals.append(answer.code())
                    time.sleep(0.1)

            threads = [threading.Thread(target=tenant, args=(i,)) for i in range(len(keys))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            own = export(grpc_at, roots(9))
            arrived = receiver.wait_for_runs(6 + len(keys), timeout=15)
            time.sleep(0.7)
            health = requests.get(f"{gateway.url}/healthz", timeout=5).status_code
            status, logged = gateway.stop()
        runs = receiver.runs
        sent_with = {run: request.key_ending for request in receiver.requests for run in request.run_ids}
    taken = {name for name, answer in answers.items() if not isinstance(answer, grpc.RpcError)}
    assert taken >= {"bin key", "bin project", "long project", "two keys", "empty key"}, answers
    assert not isinstance(own, grpc.RpcError), own
    assert set(refusals) <= {grpc.StatusCode.UNAVAILABLE}, refusals
    assert arrived and health == 200 and status == 0, logged
    assert runs[run_id(1)]["session_name"] == "default" and sent_with[run_id(1)] == KEY[-4:]
    assert runs[run_id(6)]["session_name"] == "q" * 8_000
    assert sent_with[run_id(7)] == secret[-4:]
    for index, key in enumerate(keys):
        assert sent_with[run_id(1000 + index)] == key[-4:]
    for key in (secret, KEY, *keys):
        assert key not in logged, f"{key} logged"


# -- calls that never send their message -----------------------------------------------------------


def test_senders_that_open_a_call_and_never_send_do_not_starve_the_others():
    # Found here: GrpcServer runs Export on a pool of 16 threads, and gRPC Python reads a unary call's
    # message on that thread, waiting without any deadline. Sixteen calls that send their headers
    # and never their message (a hung client, a sender behind a dropped NAT entry, a Collector that
    # opened its streams and stalled) hold all 16 threads for as long as they stay open: every
    # other sender's call waits in the pool's queue until its own deadline (DEADLINE_EXCEEDED),
    # while /readyz says 200. HTTP has a watchdog for exactly this; gRPC has none.
    # Repro: 16x channel.stream_unary(EXPORT).future(iter_that_blocks()), then
    # TraceServiceStub(channel).Export(request, timeout=5) -> DEADLINE_EXCEEDED after 5 s.
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--grpc-port", "0", "--drain", "1", env=environment(receiver)) as gateway:
            idle = IdleStreams(gateway.grpc_address, 16)
            try:
                time.sleep(0.5)
                started = time.monotonic()
                answer = export(gateway.grpc_address, roots(1), timeout=2)
                took = time.monotonic() - started
                ready = requests.get(f"{gateway.url}/readyz", timeout=5).status_code
            finally:
                idle.close()
            status, logged = gateway.stop()
    assert status == 0, logged
    assert ready == 200
    assert not isinstance(answer, grpc.RpcError), f"{answer.code()} after {took:.1f}s with 16 idle calls open"


# -- more calls than the limit ---------------------------------------------------------------------


def test_calls_beyond_the_limit_are_refused_with_a_status_otlp_senders_retry_and_none_is_lost():
    # Found here: past 64 calls at once, gRPC's own maximum_concurrent_rpcs answers RESOURCE_EXHAUSTED
    # ("Concurrent RPC limit exceeded!") with no RetryInfo. The OTLP specification makes
    # RESOURCE_EXHAUSTED retryable only with a RetryInfo, and the Collector's otlp exporter (the
    # loadbalancing exporter's, the one docs/gateway.md deploys) drops such a batch for good
    # (shouldRetry: "Retry only if RetryInfo was supplied by the server"). A burst of 100 calls
    # (a Collector replaying its sending queue after a restart with many consumers, or several
    # Collectors at once) loses every call beyond the 64th, where HTTP answers 503 + Retry-After.
    # Repro: 100 x TraceServiceStub(channel).Export.future(200-span request) at once: about 20 end
    # in RESOURCE_EXHAUSTED with empty trailing metadata (more when the gateway is busy, as here:
    # 15 calls that have not sent their message yet keep 15 of its 16 threads waiting).
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--grpc-port", "0", env=environment(receiver)) as gateway:
            slow = IdleStreams(gateway.grpc_address, 15)
            channels = [grpc.insecure_channel(gateway.grpc_address) for _ in range(4)]
            try:
                messages = [roots(*range(1 + 200 * k, 201 + 200 * k)) for k in range(100)]
                time.sleep(0.3)
                calls = [TraceServiceStub(channels[k % 4]).Export.future(messages[k], timeout=30) for k in range(100)]
                taken: list[int] = []
                refused: list[tuple[grpc.StatusCode, float | None]] = []
                for k, call in enumerate(calls):
                    try:
                        call.result()
                        taken.append(k)
                    except grpc.RpcError as error:
                        refused.append((error.code(), retry_delay(error)))
            finally:
                slow.close()
                for channel in channels:
                    channel.close()
            arrived = receiver.wait_for_runs(200 * len(taken), timeout=30)
            status, logged = gateway.stop()
        runs = receiver.runs
    assert arrived and status == 0, logged
    assert len(taken) >= 40, f"only {len(taken)} calls taken"
    assert {run_id(i) for k in taken for i in range(1 + 200 * k, 201 + 200 * k)} <= runs.keys()
    unretryable = [
        code
        for code, delay in refused
        if code is not grpc.StatusCode.UNAVAILABLE and not (code is grpc.StatusCode.RESOURCE_EXHAUSTED and delay)
    ]
    assert not unretryable, f"{len(unretryable)} of 100 calls refused without RetryInfo: {set(unretryable)}"


def test_calls_waiting_for_a_thread_do_not_hold_their_messages_beyond_the_limit():
    # BUG (in the working tree's uncommitted change, not at HEAD a07c7e0): memory is bounded by the
    # calls served at once, each at most --max-body-bytes (docs/gateway.md), but with
    # maximum_concurrent_rpcs raised to 4096 (threads: 64) gRPC reads a waiting call's whole
    # message before a thread takes it: 64 calls that never send (holding the threads), then 300
    # calls of 500 KB (on 8 connections) grew the gateway by about 150 MB, 600 calls of 1 MB by
    # 610 MB; 4096 x 32 MB at the defaults.
    # At HEAD (64 calls at most) the same attack is refused at once (see the RESOURCE_EXHAUSTED
    # bug above) and memory stays flat.
    size = 500_000
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(
            "--grpc-port", "0", "--drain", "1", "--max-body-bytes", str(size), env=environment(receiver)
        ) as gateway:
            assert gateway.process is not None
            idle = IdleStreams(gateway.grpc_address, 64)
            channels = [grpc.insecure_channel(gateway.grpc_address) for _ in range(8)]
            try:
                time.sleep(0.5)
                baseline = rss(gateway.process.pid)
                message = padded_to(size, (1,))
                calls = [TraceServiceStub(channels[k % 8]).Export.future(message, timeout=4) for k in range(300)]
                peak = baseline
                while not all(call.done() for call in calls):
                    peak = max(peak, rss(gateway.process.pid))
                    time.sleep(0.05)
            finally:
                idle.close()
                for channel in channels:
                    channel.close()
            status, logged = gateway.stop()
    assert status == 0, logged
    rise = peak - baseline
    assert rise < 64 * size + 20_000_000, f"RSS rose {rise / 1e6:.0f} MB with 300 calls of {size // 1000} KB waiting"


# -- SIGTERM ---------------------------------------------------------------------------------------


def test_sigterm_with_calls_in_flight_answers_each_ok_or_unavailable_and_delivers_every_ok():
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--grpc-port", "0", "--drain", "10", env=environment(receiver)) as gateway:
            assert gateway.process is not None
            taken: list[int] = []
            codes: list[grpc.StatusCode] = []
            lock = threading.Lock()
            stop = threading.Event()

            def sender(index: int) -> None:
                with grpc.insecure_channel(gateway.grpc_address) as channel:
                    stub = TraceServiceStub(channel)
                    number = 0
                    while not stop.is_set():
                        first = 1 + 100_000 * index + 100 * number
                        number += 1
                        try:
                            stub.Export(roots(*range(first, first + 100), pad=200), timeout=10)
                        except grpc.RpcError as error:
                            with lock:
                                codes.append(error.code())
                            time.sleep(0.05)
                            continue
                        with lock:
                            taken.append(first)

            threads = [threading.Thread(target=sender, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            time.sleep(1.0)
            gateway.process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            stop.set()
            for thread in threads:
                thread.join(15)
            gateway.process.wait(15)  # one SIGTERM only: see the test of repeated signals below
            status, logged = gateway.stop()
        runs = receiver.runs
    expected = {run_id(first + i) for first in taken for i in range(100)}
    assert status == 0, logged
    assert len(taken) > 8, "too few calls before SIGTERM to attack anything"
    # Calls that reach the gateway as it stops end in CANCELLED (gRPC's own answer): not taken, and
    # retried like UNAVAILABLE by the OTLP senders (the Collector's, the Python SDK's).
    assert set(codes) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, set(codes)
    assert expected <= runs.keys(), f"{len(expected - runs.keys())} runs answered OK were lost"


def test_sigterm_repeated_until_it_exits_still_exits_0():
    # Found here: the SIGTERM and SIGINT handlers that make the gateway drain and exit 0 are Python's, and
    # Python puts the default ones back while the interpreter finalizes after gateway() returned:
    # a signal in those last tens of milliseconds kills the process (exit status -15, or -2 for an
    # operator's repeated Ctrl-C) instead of the "exits 0" docs/gateway.md promises. What was held
    # is sent or spooled by then, but supervisors and scripts see a death by signal, and a test
    # that signals twice (as test_gateway_attack's SIGTERM test does) can see it at random.
    # Repro: send SIGTERM, then SIGTERM every 20 ms until the process is gone: -15, every time.
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--grpc-port", "0", env=environment(receiver)) as gateway:
            assert gateway.process is not None
            assert not isinstance(export(gateway.grpc_address, roots(1)), grpc.RpcError)
            while gateway.process.poll() is None:
                gateway.process.send_signal(signal.SIGTERM)
                time.sleep(0.02)
            status, logged = gateway.stop()
        delivered = run_id(1) in receiver.runs
    assert delivered, logged
    assert status == 0, f"exit status {status} after repeated SIGTERM"


@pytest.mark.parametrize("stalled", ["grpc", "http"])
def test_a_stalled_sender_at_sigterm_does_not_cost_the_runs_already_answered_ok(stalled):
    # Found here: at SIGTERM, _cli.gateway gives grpc_server.stop() the whole --drain, then the HTTP server
    # what is left, then core.close() what is left after that. One sender stalled mid-call (a gRPC
    # call whose message never comes; an HTTP body that stops arriving; a sender whose host died)
    # keeps its server waiting for the whole drain, so the pipelines get 0 s: runs the gateway
    # answered OK and LangSmith would take at once are "lost" (or only spooled with --spool-dir),
    # e.g. a child still waiting for its parent, which the drain sends as a root. Without the
    # stalled sender the same run is delivered in a quarter of a second.
    # Repro: answer a child span (parent never sent) with OK, open one IdleStreams call (or post
    # "Content-Length: 1000" and 2 bytes of body), SIGTERM with --drain 3: the log says
    # "shut down having lost 1 run(s)" and LangSmith never sees it.
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--grpc-port", "0", "--drain", "2", env=environment(receiver)) as gateway:
            orphan = export(gateway.grpc_address, request((7, 99)))
            assert not isinstance(orphan, grpc.RpcError), orphan
            idle = None
            sock = None
            if stalled == "grpc":
                idle = IdleStreams(gateway.grpc_address, 1)
            else:
                sock = socket.create_connection(address(gateway.url))
                sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: g\r\nContent-Type: application/x-protobuf\r\n")
                sock.sendall(b"Content-Length: 1000\r\n\r\n\x0a\x00")
            time.sleep(0.5)
            try:
                status, logged = gateway.stop()
            finally:
                if idle is not None:
                    idle.close()
                if sock is not None:
                    sock.close()
        delivered = receiver.wait_for_runs(1, timeout=1)
    assert status == 0, logged
    assert delivered and run_id(7) in receiver.runs, f"a run answered OK was lost at SIGTERM: {logged[-600:]}"


# -- backpressure, retries and readiness -----------------------------------------------------------


def test_the_python_grpc_exporter_retries_unavailable_until_taken_and_readyz_agrees_meanwhile():
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("attack")
    for index in range(30):
        with tracer.start_as_current_span(f"root-{index}"):
            with tracer.start_as_current_span("child"):
                pass
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    first, second = spans[:20], spans[20:]
    with LangSmithReceiver(api_key=KEY) as receiver:
        receiver.plan(*[Fault(503, retry_after="1")] * 2)  # LangSmith refuses for a while
        with GatewayProcess("--grpc-port", "0", "--high-water-bytes", "1", env=environment(receiver)) as gateway:
            exporter = OTLPSpanExporter(endpoint=gateway.grpc_address, insecure=True, timeout=25)
            assert exporter.export(first) is SpanExportResult.SUCCESS
            time.sleep(0.3)  # the first batch refused: the queue is past its mark of one byte
            busy = export(gateway.grpc_address, roots(1))
            ready_when_busy = requests.get(f"{gateway.url}/readyz", timeout=5)
            started = time.monotonic()
            result = exporter.export(second)  # refused UNAVAILABLE, retried until the queue drains
            took = time.monotonic() - started
            exporter.shutdown()
            arrived = receiver.wait_for_runs(len(spans), timeout=20)
            ready_after = requests.get(f"{gateway.url}/readyz", timeout=5).status_code
            status, logged = gateway.stop()
        runs = receiver.runs
    assert isinstance(busy, grpc.RpcError) and busy.code() is grpc.StatusCode.UNAVAILABLE
    assert retry_delay(busy) == 2
    assert ready_when_busy.status_code == 503 and "queue" in ready_when_busy.json()["reason"]
    assert result is SpanExportResult.SUCCESS and took > 0.5, f"export took {took:.1f}s: {result}"
    assert arrived and ready_after == 200 and status == 0, logged
    assert len(runs) == len(spans)
    assert "refused" in logged


def test_both_ports_under_load_with_a_slow_langsmith_keep_memory_bounded_and_lose_nothing():
    high_water = 200_000
    per_request = 20
    pad = 2_000
    grpc_senders, http_senders, requests_each = 4, 2, 6
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(
            "--grpc-port", "0", "--high-water-bytes", str(high_water), env=environment(receiver)
        ) as gateway:
            assert gateway.process is not None
            # A warm-up: the tenant's pipeline, its threads, gRPC's and the converter's imports.
            assert not isinstance(export(gateway.grpc_address, roots(*range(1, 21), pad=pad)), grpc.RpcError)
            assert requests.post(
                f"{gateway.url}/v1/traces", data=roots(21, pad=pad).SerializeToString(), headers=PROTOBUF
            ).ok
            assert receiver.wait_for_runs(21, timeout=10)
            time.sleep(0.3)
            baseline = rss(gateway.process.pid)
            receiver.plan(Fault(503, retry_after="1"), *[Fault(status=None, delay=0.15)] * 25)
            peak = [baseline]
            refused = {"grpc": 0, "http": 0}
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak.append(rss(gateway.process.pid))
                    done.wait(0.05)

            def first_of(sender: int, number: int) -> int:
                return 1_000 + (sender * requests_each + number) * per_request

            def grpc_sender(sender: int) -> None:
                # As the Collector's exporter: UNAVAILABLE is retried after its RetryInfo.
                with grpc.insecure_channel(gateway.grpc_address) as channel:
                    stub = TraceServiceStub(channel)
                    for number in range(requests_each):
                        first = first_of(sender, number)
                        message = roots(*range(first, first + per_request), pad=pad)
                        while True:
                            try:
                                stub.Export(message, timeout=10)
                                break
                            except grpc.RpcError as error:
                                assert error.code() is grpc.StatusCode.UNAVAILABLE, error
                                refused["grpc"] += 1
                                time.sleep(min(retry_delay(error) or 2, 2) / 4)

            def http_sender(sender: int) -> None:
                for number in range(requests_each):
                    first = first_of(sender, number)
                    body = roots(*range(first, first + per_request), pad=pad).SerializeToString()
                    while True:
                        answer = requests.post(f"{gateway.url}/v1/traces", data=body, headers=PROTOBUF, timeout=10)
                        if answer.status_code == 200:
                            break
                        assert answer.status_code == 503, answer.text
                        refused["http"] += 1
                        time.sleep(int(answer.headers["Retry-After"]) / 4)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            threads = [threading.Thread(target=grpc_sender, args=(i,)) for i in range(grpc_senders)]
            threads += [threading.Thread(target=http_sender, args=(grpc_senders + i,)) for i in range(http_senders)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(40)
            total = 21 + (grpc_senders + http_senders) * requests_each * per_request
            arrived = receiver.wait_for_runs(total, timeout=20)
            done.set()
            sampler.join()
            status, logged = gateway.stop()
        runs = receiver.runs
    expected = {run_id(first_of(s, n) + i) for s in range(6) for n in range(requests_each) for i in range(per_request)}
    assert arrived and expected <= runs.keys(), f"{len(expected - runs.keys())} runs lost"
    assert refused["grpc"] > 0 and refused["http"] > 0, refused
    assert status == 0, logged
    # The bound docs/gateway.md measures over HTTP (mark + 15 MB): 6 senders of 40 KB requests.
    rise = max(peak) - baseline
    logger.info("RSS baseline %.1f MB, rise %.1f MB; refused %s", baseline / 1e6, rise / 1e6, refused)
    assert rise < high_water + 15_000_000, f"RSS rose {rise / 1e6:.1f} MB"


# -- the recent HTTP fixes -------------------------------------------------------------------------


def test_the_linger_on_a_refused_body_holds_its_thread_at_most_two_seconds():
    # Found here: _Handler._refuse sets the socket's timeout to _LINGER (2 s) once and loops while the
    # deadline has not passed: a recv() begun at 1.9 s waits until 3.9 s. A sender that trickles
    # a byte every 1.9 s after a refusal holds the thread (and its connection slot) for almost
    # 2 x _LINGER, not _LINGER. Repro: POST /nope with Content-Length: 100000, read the 404, send
    # a byte at 1.8 s and at 3.6 s: the second byte is read (no reset) and the close comes after it.
    # The check: each recv's timeout must be what is left of the 2 s.
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            with socket.create_connection(address(gateway.url)) as sock:
                sock.sendall(b"POST /nope HTTP/1.1\r\nHost: g\r\nContent-Length: 100000\r\n\r\n")
                sock.settimeout(3)
                answer = b""
                while chunk := sock.recv(4096):  # the answer, then the gateway's end of writing
                    answer += chunk
                started = time.monotonic()
                time.sleep(1.8)
                sock.sendall(b"x")  # read: the linger is not over
                time.sleep(3.6 - (time.monotonic() - started))
                sock.sendall(b"x")  # at 3.6 s: a socket closed by now answers this with a reset
                time.sleep(0.3)
                try:
                    sock.sendall(b"x")  # fails once that reset came
                    closed = "still read at 3.6 s"
                except (BrokenPipeError, ConnectionResetError):
                    closed = "reset"
            assert gateway.stop()[0] == 0
    assert answer.startswith(b"HTTP/1.1 404")
    assert closed == "reset", f"the refused connection lingered past 2 s: {closed}"


def answers_to(url: str, methods: tuple[str, ...]) -> dict[str, tuple[bytes, float]]:
    """Each method's whole answer on a connection of its own (read to its close), and how long the
    connection stayed open after the request."""
    seen = {}
    for method in methods:
        with socket.create_connection(address(url), timeout=5) as sock:
            sock.sendall(f"{method} /v1/traces HTTP/1.1\r\nHost: g\r\n\r\n".encode())
            data = b""
            started = time.monotonic()
            while chunk := sock.recv(4096):
                data += chunk
            seen[method] = (data, time.monotonic() - started)
    return seen


def test_405_for_head_has_no_body_and_its_connection_closes_at_once():
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            seen = answers_to(gateway.url, ("HEAD", "OPTIONS"))
            assert gateway.stop()[0] == 0
    head, took = seen["HEAD"]
    assert head.startswith(b"HTTP/1.1 405") and head.endswith(b"\r\n\r\n"), head
    assert b"allow: get, post" in head.lower() and b"connection: close" in head.lower()
    assert b"content-length: 71" in head.lower()  # what a GET would have carried, as HEAD's is
    options, _ = seen["OPTIONS"]
    assert options.startswith(b"HTTP/1.1 405") and options.endswith(b"}"), options
    assert took < 1, f"the HEAD answer's connection closed after {took:.1f}s"


def test_every_other_method_gets_a_4xx_not_a_5xx():
    # Found here: the 405 covers PUT, DELETE, PATCH, OPTIONS and HEAD only (do_X for each); any other
    # method (TRACE, CONNECT, PROPFIND, a typo such as "POTS") still falls through to http.server's
    # "501 Unsupported method" with an HTML page: a 5xx for a client's mistake, which OTLP senders
    # retry, and not the google.rpc.Status body the docs promise for "another method".
    # Repro: printf 'TRACE /v1/traces HTTP/1.1\r\nHost: g\r\n\r\n' | nc 127.0.0.1 4318 -> 501.
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(env=environment(receiver)) as gateway:
            seen = answers_to(gateway.url, ("TRACE", "CONNECT", "PROPFIND", "POTS"))
            assert gateway.stop()[0] == 0
    statuses = {method: int(data.split()[1]) for method, (data, _) in seen.items()}
    assert all(400 <= status < 500 for status in statuses.values()), statuses


def test_metadata_between_grpcs_own_soft_and_hard_limits_is_taken_every_time():
    # gRPC refuses metadata past its soft limit (8 KiB) at random, up to its hard one: a project
    # name of 12,000 characters was taken on one call and refused on the next.
    project = "p" * 12_000
    with LangSmithReceiver(api_key=None) as receiver:
        with GatewayProcess("--grpc-port", "0", env=environment(receiver)) as gateway:
            answers = [
                export(gateway.grpc_address, roots(500 + i), (("langsmith-project", project),)) for i in range(20)
            ]
            refused = [answer.code() for answer in answers if isinstance(answer, grpc.RpcError)]
            assert refused == []
            arrived = receiver.wait_for_runs(20, timeout=15)
            _, logged = gateway.stop()
            assert arrived, (len(receiver.runs), receiver.rejected[:2], logged[-2000:])
        assert {run["session_name"] for run in receiver.runs.values()} == {project}


def test_metadata_past_the_listeners_limit_is_refused_every_time():
    project = "p" * (70 << 10)
    with LangSmithReceiver(api_key=None) as receiver:
        with GatewayProcess("--grpc-port", "0", env=environment(receiver)) as gateway:
            metadata = (("langsmith-project", project),)
            answers = [export(gateway.grpc_address, roots(600 + i), metadata) for i in range(10)]
            gateway.stop()
    assert all(isinstance(answer, grpc.RpcError) for answer in answers), answers
    assert receiver.runs == {}
