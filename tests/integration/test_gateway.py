"""The gateway as senders and operators meet it: a real OTLP exporter, real HTTP, a real process."""

from __future__ import annotations

import gzip
import json
import socket
import time

import grpc
import pytest
import requests
import zstandard
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status as RpcStatus
from helpers import GatewayProcess, closed_port_url, ended_spans
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as OTLPGrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_langsmith import LangSmithSpanExporter
from otel_langsmith._gateway import Gateway, Limits
from otel_langsmith._settings import Settings
from otel_langsmith.testing import Fault, LangSmithReceiver

pytestmark = pytest.mark.timeout(120)

KEY = "lsv2-gateway-key"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def agent(tracer) -> None:
    """An agent as instrumentations write one: model calls with their conversation, a tool, an error."""
    conversation = [{"role": "system", "parts": [{"type": "text", "content": "You are terse."}]}]
    with tracer.start_as_current_span("invoke_agent planner", attributes={"gen_ai.operation.name": "invoke_agent"}):
        for step in range(3):
            conversation.append({"role": "user", "parts": [{"type": "text", "content": f"step {step}?"}]})
            answer = [
                {"role": "assistant", "parts": [{"type": "text", "content": f"done {step}"}], "finish_reason": "stop"}
            ]
            with tracer.start_as_current_span(
                "chat gpt-4o",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.usage.input_tokens": 10 + step,
                    "gen_ai.usage.output_tokens": 3,
                    "gen_ai.input.messages": json.dumps(conversation),
                    "gen_ai.output.messages": json.dumps(answer),
                    "gen_ai.request.stop_sequences": ("\n\n", "END"),
                },
            ):
                pass
            with (
                tracer.start_as_current_span(
                    "execute_tool search",
                    attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
                ) as tool,
                tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as http,
            ):
                http.set_attribute("http.request.method", "GET")
                http.set_attribute("url.full", f"http://search.local/?q={step}")
                http.set_attribute("http.response.status_code", 500 if step == 2 else 200)
                if step == 2:
                    error = RuntimeError("search is down")
                    http.record_exception(error)
                    http.set_status(Status(StatusCode.ERROR, "search is down"))
                    tool.set_status(Status(StatusCode.ERROR, "search is down"))


def comparable(runs: dict) -> dict:
    """Each run as LangSmith would show it, keyed by id."""
    fields = (
        "name",
        "run_type",
        "trace_id",
        "parent_run_id",
        "dotted_order",
        "start_time",
        "end_time",
        "inputs",
        "outputs",
        "error",
        "session_name",
        "extra",
        "events",
        "tags",
    )
    return {run_id: {name: run.get(name) for name in fields} for run_id, run in runs.items()}


def in_process(spans) -> dict:
    """What the in-process exporter sends for ``spans``, as :func:`comparable` shows it."""
    with LangSmithReceiver(api_key=KEY) as direct:
        exporter = LangSmithSpanExporter(endpoint=direct.url, api_key=KEY, project="gw")
        exporter.export(spans)
        exporter.shutdown()
        return comparable(direct.runs)


def test_the_python_otlp_exporter_through_the_gateway_gives_the_runs_of_the_in_process_exporter():
    spans = ended_spans(agent)
    expected = in_process(spans)
    assert len(expected) == len(spans) == 10

    with LangSmithReceiver(api_key=KEY) as receiver:
        environment = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY, "LANGSMITH_PROJECT": "gw"}
        with GatewayProcess(env=environment) as gateway:
            otlp = OTLPSpanExporter(endpoint=f"{gateway.url}/v1/traces")
            # Children before parents, in two requests, as a batching sender delivers them.
            assert otlp.export(spans[:5]) is SpanExportResult.SUCCESS
            assert otlp.export(spans[5:]) is SpanExportResult.SUCCESS
            assert receiver.wait_for_runs(len(spans), timeout=20)
            status, logged = gateway.stop()
        assert status == 0, logged
        assert receiver.rejected == [] and receiver.problems() == []
        got = comparable(receiver.runs)
    assert got.keys() == expected.keys()
    for run_id, run in expected.items():
        assert got[run_id] == run, run["name"]


def post(url: str, body: bytes, **headers: str) -> requests.Response:
    return requests.post(f"{url}/v1/traces", data=body, headers=headers, timeout=10)


def test_tenancy_headers_choose_key_and_project_and_keys_never_share_a_batch():
    spans = ended_spans(agent)
    body = encode_spans(spans).SerializeToString()
    with LangSmithReceiver(api_key=None) as receiver:
        environment = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY, "LANGSMITH_PROJECT": "own"}
        with GatewayProcess(env=environment) as gateway:
            assert post(gateway.url, body, **PROTOBUF).status_code == 200
            other = encode_spans(ended_spans(agent)).SerializeToString()
            answer = post(gateway.url, other, **PROTOBUF, **{"x-api-key": "lsv2-other", "Langsmith-Project": "theirs"})
            assert answer.status_code == 200
            assert receiver.wait_for_runs(2 * len(spans), timeout=20)
            assert gateway.stop()[0] == 0
        by_key: dict[str, set[str]] = {}
        for request in receiver.requests:
            if request.run_ids:
                by_key.setdefault(request.key_ending, set()).update(request.run_ids)
        projects = {run["session_name"] for run in receiver.runs.values()}
    # Each request carried one key's runs only: a run under both keys would be counted twice.
    assert set(by_key) == {KEY[-4:], "ther"}
    assert len(by_key[KEY[-4:]]) == len(by_key["ther"]) == len(spans)
    assert not by_key[KEY[-4:]] & by_key["ther"]
    assert projects == {"own", "theirs"}


def test_a_gateway_without_a_key_refuses_requests_that_bring_none_with_401():
    body = encode_spans(ended_spans(agent)).SerializeToString()
    with LangSmithReceiver(api_key="lsv2-theirs") as receiver:
        with GatewayProcess(env={"LANGSMITH_ENDPOINT": receiver.url}) as gateway:
            refused = post(gateway.url, body, **PROTOBUF)
            taken = post(gateway.url, body, **PROTOBUF, **{"x-api-key": "lsv2-theirs"})
            assert receiver.wait_for_runs(10, timeout=20)
            assert gateway.stop()[0] == 0
    assert refused.status_code == 401
    assert b"x-api-key" in refused.content
    assert taken.status_code == 200


def test_bad_bodies_get_400_413_or_a_partial_success_and_the_good_spans_go_through():
    spans = ended_spans(agent)
    request = encode_spans(spans)
    # One span with an id of the wrong length among good ones.
    request.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01\x02"
    with LangSmithReceiver(api_key=KEY) as receiver:
        environment = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY}
        with GatewayProcess("--max-body-bytes", "200000", env=environment) as gateway:
            partial = post(gateway.url, request.SerializeToString(), **PROTOBUF)
            garbage = post(gateway.url, b"\xff\x00 not protobuf", **PROTOBUF)
            not_json = post(gateway.url, b"{nope", **{"Content-Type": "application/json"})
            wrong_type = post(gateway.url, b"{}", **{"Content-Type": "text/plain"})
            huge = post(gateway.url, b"\x00" * 300_000, **PROTOBUF)
            deep = post(gateway.url, deep_json_request(330), **{"Content-Type": "application/json"})
            bomb = post(gateway.url, gzip.compress(b"\x00" * 5_000_000), **PROTOBUF, **{"Content-Encoding": "gzip"})
            health = requests.get(f"{gateway.url}/healthz", timeout=5)
            assert receiver.wait_for_runs(len(spans) - 1, timeout=20)
            assert gateway.stop()[0] == 0
    assert partial.status_code == 200
    response = ExportTraceServiceResponse.FromString(partial.content)
    assert response.partial_success.rejected_spans == 1
    assert "span_id" in response.partial_success.error_message
    assert [garbage.status_code, not_json.status_code, wrong_type.status_code] == [400, 400, 400]
    assert [huge.status_code, bomb.status_code] == [413, 413]
    assert deep.status_code == 200 and deep.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert health.status_code == 200
    assert len(receiver.runs) == len(spans) - 1  # the child of the rejected span is released as a root
    assert receiver.rejected == []


def deep_json_request(depth: int) -> bytes:
    """One span whose attribute nests arrays ``depth`` deep: as deep as a JSON parser takes."""
    nested = '{"arrayValue":{"values":[' * depth + '{"stringValue":"x"}' + "]}}" * depth
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "deep"}
    span["attributes"] = [{"key": "deep", "value": "VALUE"}]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    return body.replace('"VALUE"', nested).encode()


def test_gzip_and_zstd_bodies_are_taken():
    body = encode_spans(ended_spans(agent)).SerializeToString()
    with LangSmithReceiver(api_key=KEY) as receiver:
        environment = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY}
        with GatewayProcess(env=environment) as gateway:
            zipped = post(gateway.url, gzip.compress(body), **PROTOBUF, **{"Content-Encoding": "gzip"})
            other = encode_spans(ended_spans(agent)).SerializeToString()
            packed = zstandard.ZstdCompressor().compress(other)
            squeezed = post(gateway.url, packed, **PROTOBUF, **{"Content-Encoding": "zstd"})
            assert receiver.wait_for_runs(20, timeout=20)
            assert gateway.stop()[0] == 0
    assert [zipped.status_code, squeezed.status_code] == [200, 200]


def test_readyz_says_whether_langsmith_answers_and_the_count_line_is_logged():
    with LangSmithReceiver(api_key=KEY) as receiver:
        url = receiver.url
        environment = {"LANGSMITH_ENDPOINT": url, "LANGSMITH_API_KEY": KEY}
        with GatewayProcess("--report-every", "0.5", env=environment) as gateway:
            ready = requests.get(f"{gateway.url}/readyz", timeout=10)
            assert post(gateway.url, encode_spans(ended_spans(agent)).SerializeToString(), **PROTOBUF).ok
            assert receiver.wait_for_runs(10, timeout=20)
            time.sleep(1.5)
            receiver.stop()
            time.sleep(5.5)  # the readiness probe is cached for 5 s
            not_ready = requests.get(f"{gateway.url}/readyz", timeout=10)
            status, logged = gateway.stop()
    assert ready.status_code == 200, ready.text
    assert not_ready.status_code == 503 and "does not answer" in not_ready.json()["reason"]
    assert status == 0
    counts = [line for line in logged.splitlines() if "span(s) in" in line]
    assert "10 span(s) in, 0 rejected; 10 run(s) sent" in counts[0], logged
    assert KEY not in logged


def test_connections_beyond_the_limit_are_answered_503_at_once_and_idle_ones_do_not_delay_sigterm():
    with LangSmithReceiver(api_key=KEY) as receiver:
        environment = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY}
        with GatewayProcess(env=environment) as gateway:
            host, port = gateway.url.removeprefix("http://").split(":")
            idle = [socket.create_connection((host, int(port))) for _ in range(64)]
            time.sleep(0.5)
            with socket.create_connection((host, int(port))) as extra:
                extra.settimeout(5)
                answer = extra.recv(4096)
            started = time.monotonic()
            status, logged = gateway.stop()
            took = time.monotonic() - started
            for connection in idle:
                connection.close()
    assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 2" in answer
    assert status == 0, logged
    assert took < 10, f"SIGTERM took {took:.1f}s with idle connections open"


def test_each_key_spools_apart_and_its_runs_are_sent_with_that_key_only(tmp_path):
    spool = tmp_path / "spool"
    mine, theirs = encode_spans(ended_spans(agent)).SerializeToString(), encode_spans(ended_spans(agent))
    theirs_body = theirs.SerializeToString()
    down = {"LANGSMITH_ENDPOINT": closed_port_url(), "LANGSMITH_API_KEY": KEY}
    with GatewayProcess("--spool-dir", str(spool), "--drain", "4", env=down) as gateway:
        assert post(gateway.url, mine, **PROTOBUF).status_code == 200
        assert post(gateway.url, theirs_body, **PROTOBUF, **{"x-api-key": "lsv2-other"}).status_code == 200
        status, logged = gateway.stop()
    assert status == 0, logged
    assert list(spool.glob("*.batch")) and list(spool.glob("key-*/*.batch"))

    with LangSmithReceiver(api_key=None) as receiver:
        up = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY}
        with GatewayProcess("--spool-dir", str(spool), env=up) as gateway:
            # The gateway's own key's runs go without any request; the other key's wait for it.
            assert receiver.wait_for_runs(10, timeout=20)
            time.sleep(1)
            assert len(receiver.runs) == 10
            one_more = encode_spans(ended_spans(lambda tracer: tracer.start_span("late").end()))
            reply = post(gateway.url, one_more.SerializeToString(), **PROTOBUF, **{"x-api-key": "lsv2-other"})
            assert reply.status_code == 200
            assert receiver.wait_for_runs(21, timeout=20)
            assert gateway.stop()[0] == 0
        keys = {request.key_ending for request in receiver.requests if request.run_ids}
        by_key = {key: {i for r in receiver.requests if r.key_ending == key for i in r.run_ids} for key in keys}
    assert keys == {KEY[-4:], "ther"}
    assert len(by_key[KEY[-4:]]) == 10 and len(by_key["ther"]) == 11
    assert not list(spool.rglob("*.batch"))


def test_a_new_tenant_takes_an_idle_tenant_s_slot_and_is_refused_when_none_is_idle():
    def body() -> bytes:
        return encode_spans(ended_spans(agent)).SerializeToString()

    headers = {"content-type": "application/x-protobuf"}
    with LangSmithReceiver(api_key=None) as receiver:
        settings = Settings.resolve(endpoint=receiver.url, api_key=KEY, environ={})
        gateway = Gateway(settings, Limits(max_tenants=2))
        try:
            for project in ("a", "b", "c"):
                assert gateway.traces({**headers, "langsmith-project": project}, body()).status == 200
                for pipeline in gateway.tenants.all():
                    assert pipeline.force_flush(10_000)
            assert receiver.wait_for_runs(30, timeout=10)
            assert len(gateway.tenants.all()) == 2  # "a" gave its slot to "c"
            receiver.stop()  # now every tenant holds runs it could not send
            for project in ("b", "c"):
                assert gateway.traces({**headers, "langsmith-project": project}, body()).status == 200
                tenant = gateway.tenants.get(KEY, project)
                assert tenant is not None and not tenant.force_flush(2_000)
            refused = gateway.traces({**headers, "langsmith-project": "d"}, body())
        finally:
            gateway.close(1)
    assert refused.status == 503 and refused.headers["Retry-After"] == "2"
    assert b"tenant slot" in refused.body
    assert gateway.totals().runs_sent == 30


def test_a_sender_still_sending_a_refused_body_reads_its_answer():
    # The answer comes before the body is read (a 5 MB body is never sent whole here), and the
    # sender, still sending, can read it.
    with LangSmithReceiver(api_key=KEY) as receiver:
        environment = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY}
        with GatewayProcess("--max-body-bytes", "100000", env=environment) as gateway:
            host, port = gateway.url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port))) as connection:
                head = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                try:
                    connection.sendall(f"{head}Content-Length: 5000000\r\n\r\n".encode() + b"\x00" * 300_000)
                    time.sleep(0.3)  # the gateway has answered, with part of the body unread
                    connection.sendall(b"\x00" * 300_000)
                except OSError:
                    pass  # the gateway closed its side: what matters is the answer it sent
                connection.settimeout(5)
                answer = connection.recv(4096)
            assert gateway.stop()[0] == 0
    assert answer.startswith(b"HTTP/1.1 413"), answer


# -- OTLP/gRPC --------------------------------------------------------------------------------------


def test_the_python_otlp_grpc_exporter_through_the_gateway_gives_the_runs_of_the_in_process_exporter():
    spans = ended_spans(agent)
    expected = in_process(spans)

    with LangSmithReceiver(api_key=None) as receiver:
        environment = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY, "LANGSMITH_PROJECT": "gw"}
        with GatewayProcess("--grpc-port", "0", env=environment) as gateway:
            otlp = OTLPGrpcExporter(endpoint=gateway.grpc_address, insecure=True, compression=Compression.Gzip)
            assert otlp.export(spans[:5]) is SpanExportResult.SUCCESS
            assert otlp.export(spans[5:]) is SpanExportResult.SUCCESS
            other = encode_spans(ended_spans(agent))
            metadata = (("x-api-key", "lsv2-other"), ("langsmith-project", "theirs"))
            with grpc.insecure_channel(gateway.grpc_address) as channel:
                TraceServiceStub(channel).Export(other, metadata=metadata, timeout=10)
            assert receiver.wait_for_runs(2 * len(spans), timeout=20)
            status, logged = gateway.stop()
        assert status == 0, logged
        assert receiver.rejected == [] and receiver.problems() == []
        got = comparable({run_id: run for run_id, run in receiver.runs.items() if run["session_name"] == "gw"})
        theirs = {request.key_ending for request in receiver.requests if request.run_ids} - {KEY[-4:]}
    assert got == expected
    assert theirs == {"ther"}


def grpc_error(address: str, request, metadata=()) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel:
        try:
            TraceServiceStub(channel).Export(request, metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            return error
    raise AssertionError("the call succeeded")


def test_grpc_senders_get_grpc_statuses_retry_info_and_partial_success():
    spans = ended_spans(agent)
    bad = encode_spans(spans)
    bad.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x00" * 3
    with LangSmithReceiver(api_key=KEY) as receiver:
        keyless = {"LANGSMITH_ENDPOINT": receiver.url}
        with GatewayProcess("--grpc-port", "0", env=keyless) as gateway:
            unauthenticated = grpc_error(gateway.grpc_address, encode_spans(spans))
            with grpc.insecure_channel(gateway.grpc_address) as channel:
                partial = TraceServiceStub(channel).Export(bad, metadata=(("x-api-key", KEY),), timeout=10)
            assert receiver.wait_for_runs(len(spans) - 1, timeout=20)
            assert gateway.stop()[0] == 0
        receiver.plan(*[Fault(503)] * 50)  # LangSmith refuses for now: what is taken stays queued
        environment = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY}
        with GatewayProcess("--grpc-port", "0", "--high-water-bytes", "1", env=environment) as gateway:
            with grpc.insecure_channel(gateway.grpc_address) as channel:
                TraceServiceStub(channel).Export(encode_spans(ended_spans(agent)), timeout=10)
            time.sleep(0.5)  # its first batch refused, the queue is past a mark of one byte
            busy = grpc_error(gateway.grpc_address, encode_spans(ended_spans(agent)))
            assert gateway.stop()[0] == 0
    assert unauthenticated.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "x-api-key" in unauthenticated.details()
    assert partial.partial_success.rejected_spans == 1
    assert busy.code() is grpc.StatusCode.UNAVAILABLE
    trailers = dict(busy.trailing_metadata())
    (detail,) = RpcStatus.FromString(trailers["grpc-status-details-bin"]).details
    retry = RetryInfo()
    assert detail.Unpack(retry) and retry.retry_delay.seconds == 2  # where the Collector reads it
    assert RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds == 2  # Python's exporter


def test_two_replicas_draining_one_spool_at_once_send_each_run_once(tmp_path):
    spool = tmp_path / "spool"
    down = {"LANGSMITH_ENDPOINT": closed_port_url(), "LANGSMITH_API_KEY": KEY}
    with GatewayProcess("--spool-dir", str(spool), "--drain", "3", env=down) as gateway:
        for _ in range(12):
            assert post(gateway.url, encode_spans(ended_spans(agent)).SerializeToString(), **PROTOBUF).ok
        assert gateway.stop()[0] == 0
    assert len(list(spool.glob("*.batch"))) >= 2

    with LangSmithReceiver(api_key=KEY) as receiver:
        # A slow LangSmith: each replica holds its claim on a file while the other looks for work.
        receiver.plan(*[Fault(status=None, delay=0.3)] * 6)
        up = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": KEY}
        # Both start at once and both send the spool they share, without waiting for a request.
        with (
            GatewayProcess("--spool-dir", str(spool), env=up) as one,
            GatewayProcess("--spool-dir", str(spool), env=up) as two,
        ):
            assert receiver.wait_for_runs(120, timeout=20)
            time.sleep(1)
            assert one.stop()[0] == 0 and two.stop()[0] == 0
        posts = [receiver.operations(run_id) for run_id in receiver.runs]
        assert receiver.rejected == [] and receiver.duplicate_posts == 0
    assert len(posts) == 120 and all(operations == ["post"] for operations in posts)
    assert not list(spool.rglob("*.batch*"))
