"""Live, linked traces: the span processor, early posts, one-call setup, distributed tracing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import langsmith as ls
import pytest
import requests
from helpers import child_environment, run_child
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_langsmith import LangSmithPropagator, LangSmithSpanProcessor
from otel_langsmith import _ids as ids

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def live(langsmith_receiver) -> Iterator[tuple[TracerProvider, LangSmithSpanProcessor]]:
    provider = TracerProvider()
    processor = LangSmithSpanProcessor(
        endpoint=langsmith_receiver.url, api_key=langsmith_receiver.api_key, flush_interval=0.1, live_after=1.0
    )
    provider.add_span_processor(processor)
    yield provider, processor
    provider.shutdown()


def wait_until(condition, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_span_of_a_few_milliseconds_costs_one_operation(langsmith_receiver, live):
    provider, processor = live
    with provider.get_tracer("short").start_as_current_span("quick") as span:
        time.sleep(0.005)
    run_id = ids.root_run_id(span.get_span_context().trace_id)
    assert processor.force_flush()
    assert langsmith_receiver.operations(run_id) == ["post"]
    assert "end_time" in langsmith_receiver.runs[run_id]


def test_a_child_reaches_langsmith_while_its_root_is_open(langsmith_receiver, live):
    provider, _ = live
    tracer = provider.get_tracer("tree")
    with tracer.start_as_current_span("root") as root:
        with tracer.start_as_current_span("child") as child:
            pass
        child_id = ids.span_run_id(child.get_span_context().span_id)
        assert wait_until(lambda: child_id in langsmith_receiver.runs, timeout=2)
        root_id = ids.root_run_id(root.get_span_context().trace_id)
        assert root_id not in langsmith_receiver.runs  # the root is still open (and young)
        run = langsmith_receiver.runs[child_id]
        assert run["parent_run_id"] == root_id and run["trace_id"] == root_id
    assert wait_until(lambda: root_id in langsmith_receiver.runs)
    assert langsmith_receiver.problems() == [] and langsmith_receiver.rejected == []


def test_a_remote_parent_without_langsmith_context_makes_a_root_at_once(langsmith_receiver, live):
    provider, processor = live
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    tracer = provider.get_tracer("remote")
    with tracer.start_as_current_span("handler", context=trace.set_span_in_context(NonRecordingSpan(remote))):
        with tracer.start_as_current_span("inner"):
            pass
    assert processor.force_flush()
    (root,) = langsmith_receiver.roots()
    assert root["name"] == "handler" and root["extra"]["metadata"]["OTEL_PARENT_SPAN_ID"] == f"{0xDEF:016x}"
    assert [c["name"] for c in langsmith_receiver.children(root["id"])] == ["inner"]


class QuietHandler(BaseHTTPRequestHandler):
    def reply_ok(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def serve(handler) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture
def sdk_client(langsmith_receiver, monkeypatch):
    # Any LangSmith client the SDK makes on its own must come here too, never to the internet.
    monkeypatch.setenv("LANGSMITH_ENDPOINT", langsmith_receiver.url)
    monkeypatch.setenv("LANGSMITH_API_KEY", langsmith_receiver.api_key)
    client = ls.Client(api_url=langsmith_receiver.url, api_key=langsmith_receiver.api_key)
    yield client
    client.flush()


def test_a_traceable_caller_and_an_otel_service_make_one_trace(langsmith_receiver, live, sdk_client):
    provider, processor = live
    tracer = provider.get_tracer("service")

    class Service(QuietHandler):
        def do_GET(self) -> None:
            context = LangSmithPropagator().extract(self.headers)
            with tracer.start_as_current_span("service-handler", context=context):
                with tracer.start_as_current_span("db-query"):
                    pass
            self.reply_ok()

    server, url = serve(Service)

    @ls.traceable(name="caller")
    def caller() -> str:
        headers = ls.get_current_run_tree().to_headers()
        return requests.get(url, headers=headers, timeout=5).text

    with ls.tracing_context(
        enabled=True, client=sdk_client, project_name="interop", metadata={"user": "u1"}, tags=["t1"]
    ):
        assert caller() == "ok"
    sdk_client.flush()
    assert processor.force_flush()
    server.shutdown()
    (root,) = langsmith_receiver.roots()
    assert root["name"] == "caller"
    (handler,) = langsmith_receiver.children(root["id"])
    assert handler["name"] == "service-handler" and handler["trace_id"] == root["id"]
    assert [c["name"] for c in langsmith_receiver.children(handler["id"])] == ["db-query"]
    for run in langsmith_receiver.runs.values():  # inherited from the caller, down the service's tree
        assert run["session_name"] == "interop" and run["extra"]["metadata"]["user"] == "u1" and "t1" in run["tags"]
    assert langsmith_receiver.problems() == [] and langsmith_receiver.rejected == []


def test_an_otel_client_and_a_traceable_service_make_one_trace(langsmith_receiver, live, sdk_client):
    provider, processor = live

    @ls.traceable(name="remote-tool")
    def tool(value: int) -> int:
        return value * 2

    class Service(QuietHandler):
        def do_GET(self) -> None:
            headers = {key.lower(): value for key, value in self.headers.items()}
            parent = ls.RunTree.from_headers(headers, client=sdk_client)
            with ls.tracing_context(parent=parent, client=sdk_client, enabled=True):
                tool(21)
            self.reply_ok()

    server, url = serve(Service)
    tracer = provider.get_tracer("client")
    attributes = {
        "langsmith.metadata.team": "search",
        "langsmith.span.tags": "a,b",
        "langsmith.trace.session_name": "p2",
    }
    with tracer.start_as_current_span("client-request", attributes=attributes):
        headers: dict[str, str] = {}
        LangSmithPropagator().inject(headers)
        requests.get(url, headers=headers, timeout=5)
    sdk_client.flush()
    assert processor.force_flush()
    server.shutdown()
    (root,) = langsmith_receiver.roots()
    assert root["name"] == "client-request"
    (remote,) = langsmith_receiver.children(root["id"])
    assert remote["name"] == "remote-tool" and remote["trace_id"] == root["id"]
    assert remote["session_name"] == "p2" and remote["extra"]["metadata"]["team"] == "search"
    assert sorted(remote["tags"]) == ["a", "b"]
    assert langsmith_receiver.problems() == [] and langsmith_receiver.rejected == []


def test_injected_headers_have_the_sdks_layout(live):
    provider, _ = live
    tracer = provider.get_tracer("headers")
    with tracer.start_as_current_span(
        "outer", attributes={"langsmith.metadata.k": "v,1", "langsmith.span.tags": "x,y"}
    ):
        with tracer.start_as_current_span("inner") as inner:
            headers: dict[str, str] = {"baggage": "other=1"}
            LangSmithPropagator().inject(headers)
    segments = ids.parse_dotted_order(headers["langsmith-trace"])
    assert len(segments) == 2 and segments[-1][1] == ids.span_run_id(inner.get_span_context().span_id)
    assert headers["baggage"] == (
        "other=1,langsmith-metadata=%7B%22k%22%3A%22v%2C1%22%7D,langsmith-tags=x%2Cy,langsmith-project=default"
    )
    tree = ls.RunTree.from_headers(headers)
    assert str(tree.id) == segments[-1][1] and str(tree.trace_id) == segments[0][1]
    assert tree.metadata["k"] == "v,1" and sorted(tree.tags) == ["x", "y"]
    assert unquote(headers["baggage"].rsplit("=", 1)[1]) == "default"


def test_configure_installs_everything_in_one_call(langsmith_receiver):
    script = (
        "import otel_langsmith\n"
        "from opentelemetry import trace, propagate\n"
        "processor = otel_langsmith.configure(flush_interval=0.1)\n"
        "with trace.get_tracer('x').start_as_current_span('configured'):\n"
        "    headers = {}\n"
        "    propagate.inject(headers)\n"
        "    assert 'langsmith-trace' in headers and 'traceparent' in headers, headers\n"
        "trace.get_tracer_provider().shutdown()\n"
    )
    completed = run_child(
        [sys.executable, "-c", script],
        env=child_environment(LANGSMITH_ENDPOINT=langsmith_receiver.url, LANGSMITH_API_KEY=langsmith_receiver.api_key),
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert [r["name"] for r in langsmith_receiver.runs.values()] == ["configured"]


def test_opentelemetry_instrument_gets_live_runs_from_the_environment(langsmith_receiver):
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    environment = child_environment(
        OTEL_TRACES_EXPORTER="langsmith_live",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_LANGSMITH_LIVE_AFTER="0.5",
        OTEL_EXPORTER_LANGSMITH_FLUSH_INTERVAL="0.1",
        LANGSMITH_ENDPOINT=langsmith_receiver.url,
        LANGSMITH_API_KEY=langsmith_receiver.api_key,
        LIVE_APP_SECONDS="3",
    )
    process = subprocess.Popen(
        [str(instrument), sys.executable, str(EXAMPLES / "live_app.py")],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # While the job runs, its run is there already, in progress.
        assert wait_until(lambda: "long-job" in {r["name"] for r in langsmith_receiver.runs.values()}, 10)
        assert process.poll() is None
        (job,) = [r for r in langsmith_receiver.runs.values() if r["name"] == "long-job"]
        assert "end_time" not in job
    finally:
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    runs = {r["name"]: r for r in langsmith_receiver.runs.values()}
    assert runs["long-job"]["outputs"] == {"output": "done"} and "end_time" in runs["long-job"]
    assert all("end_time" in run for run in runs.values())
    assert len(runs) == 4 and langsmith_receiver.problems() == [] and langsmith_receiver.rejected == []


def test_the_same_call_traced_twice_counts_its_tokens_once_when_placed_live(langsmith_receiver, live):
    # The processor places a span when it starts: whether its parent is a model call is known then.
    provider, processor = live
    tracer = provider.get_tracer("double")
    usage = {"gen_ai.usage.input_tokens": 24, "gen_ai.usage.output_tokens": 7}
    with tracer.start_as_current_span("chat gpt-4o-mini", attributes={"gen_ai.operation.name": "chat"}) as outer:
        inner_attributes = {
            "openinference.span.kind": "LLM",
            "llm.token_count.prompt": 24,
            "llm.token_count.completion": 7,
        }
        with tracer.start_as_current_span("ChatCompletion", attributes=inner_attributes):
            pass
        outer.set_attributes(usage)
    assert processor.force_flush()
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert runs["chat gpt-4o-mini"]["extra"]["metadata"]["usage_metadata"]["total_tokens"] == 31
    inner = runs["ChatCompletion"]
    assert "usage_metadata" not in (inner.get("outputs") or {})
    assert "usage_metadata" not in inner["extra"]["metadata"]
    assert inner["extra"]["metadata"]["otel_langsmith_nested_usage"]["total_tokens"] == 31
