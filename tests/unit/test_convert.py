"""span -> run, on spans made by the real SDK."""

import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from otel_langsmith import _ids as ids
from otel_langsmith._convert import run_key, span_to_pending


def convert(span, project="proj"):
    return span_to_pending(span, project=project)


def test_a_root_and_a_child_get_ids_by_the_design_rules(record_spans):
    def body(tracer):
        with tracer.start_as_current_span("root"), tracer.start_as_current_span("child"):
            pass

    child, root = record_spans(body)
    root_run, child_run = convert(root), convert(child)
    assert root_run.run_id == ids.root_run_id(root.context.trace_id)
    assert root_run.parent is None
    assert child_run.run_id == ids.span_run_id(child.context.span_id)
    assert child_run.parent == root.context.span_id
    assert child_run.metadata["OTEL_TRACE_ID"] == f"{child.context.trace_id:032x}"
    assert child_run.metadata["OTEL_SPAN_ID"] == f"{child.context.span_id:016x}"
    assert child_run.start_us == child.start_time // 1000
    assert child_run.end_us == child.end_time // 1000
    assert root_run.metadata["OTEL_SPAN_ID"] == f"{root.context.span_id:016x}"
    assert root_run.run["name"] == "root" and root_run.run["run_type"] == "chain"
    assert root_run.run["session_name"] == "proj"


def test_a_remote_parent_makes_a_local_root_and_is_named_in_metadata(record_spans):
    remote = SpanContext(0x1234, 0xABCD, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))

    def body(tracer):
        with tracer.start_as_current_span("server", context=trace.set_span_in_context(NonRecordingSpan(remote))):
            pass

    (span,) = record_spans(body)
    run = convert(span)
    assert run.parent is None
    assert run.run_id == ids.span_run_id(span.context.span_id)
    assert run.metadata["OTEL_PARENT_SPAN_ID"] == f"{0xABCD:016x}"
    assert run.metadata["OTEL_PARENT_IS_REMOTE"] is True


def test_inputs_and_outputs_from_each_generic_key(record_spans):
    def body(tracer):
        with tracer.start_as_current_span("native") as span:
            span.set_attribute("gen_ai.prompt", json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode())
            span.set_attribute("gen_ai.completion", '{"answer": 42}')
        with tracer.start_as_current_span("openinference") as span:
            span.set_attribute("input.value", "plain question")
            span.set_attribute("input.mime_type", "text/plain")
            span.set_attribute("output.value", "[1, 2]")
        with tracer.start_as_current_span("traceloop") as span:
            span.set_attribute("traceloop.entity.input", '{"args": [1], "kwargs": {}}')
            span.set_attribute("traceloop.entity.output", '{"broken": ')

    native, oi, tl = (convert(s) for s in record_spans(body))
    assert native.run["inputs"] == {"messages": [{"role": "user", "content": "hi"}]}
    assert native.run["outputs"] == {"answer": 42}
    assert oi.run["inputs"] == {"input": "plain question"}
    assert oi.run["outputs"] == {"output": [1, 2]}
    assert "input.value" not in oi.metadata and "input.mime_type" not in oi.metadata
    assert tl.run["inputs"] == {"args": [1], "kwargs": {}}
    assert tl.run["outputs"] == {"output": '{"broken": '}


def test_langsmith_attributes_set_name_kind_tags_metadata_and_project(record_spans):
    def body(tracer):
        with tracer.start_as_current_span("span-name") as span:
            span.set_attribute("langsmith.trace.name", "Nice Name")
            span.set_attribute("langsmith.span.kind", "LLM")
            span.set_attribute("langsmith.span.tags", "a, b,,c")
            span.set_attribute("langsmith.metadata.user", "u1")
            span.set_attribute("langsmith.metadata.config", '{"k": [1]}')
            span.set_attribute("langsmith.metadata.count", "123")
            span.set_attribute("langsmith.trace.session_name", "other-project")
            span.set_attribute("http.method", "GET")

    (span,) = record_spans(body)
    run = convert(span)
    assert run.run["name"] == "Nice Name"
    assert run.run["run_type"] == "llm"
    assert run.run["tags"] == ["a", "b", "c"]
    assert run.run["session_name"] == "other-project"
    assert run.project_explicit
    assert run.metadata["user"] == "u1"
    assert run.metadata["config"] == {"k": [1]}
    assert run.metadata["count"] == "123"
    assert run.metadata["http.method"] == "GET"
    assert not any(key.startswith("langsmith.") for key in run.metadata)


def test_an_unknown_span_kind_falls_back_to_chain(record_spans):
    def body(tracer):
        with tracer.start_as_current_span("x", attributes={"langsmith.span.kind": "agent"}):
            pass

    (span,) = record_spans(body)
    assert convert(span).run["run_type"] == "chain"


def test_session_id_alone_names_the_project_by_id(record_spans):
    session = "5f1e8a3e-0000-4000-8000-000000000001"

    def body(tracer):
        with tracer.start_as_current_span("x", attributes={"langsmith.trace.session_id": session}):
            pass

    (span,) = record_spans(body)
    run = convert(span).run
    assert run["session_id"] == session and "session_name" not in run


def test_explicit_dotted_order_wins(record_spans):
    trace_uuid = "0e01bf50-474d-4536-810f-67d3ee7ea3e7"
    parent_uuid = "a8024e23-5b82-47fd-970e-f6a5ba3f5097"
    own = "0ec6b845-18b9-4aa1-8f1b-6ba3f9fdefd6"
    dotted = f"20240919T171648521691Z{trace_uuid}.20240919T171648523407Z{parent_uuid}.20240919T171648523563Z{own}"

    def body(tracer):
        with tracer.start_as_current_span("x", attributes={"langsmith.span.dotted_order": dotted}):
            pass

    (span,) = record_spans(body)
    run = convert(span)
    assert (run.run_id, run.trace_id, run.parent_run_id, run.dotted_order) == (own, trace_uuid, parent_uuid, dotted)
    assert run.parent is None  # nothing to wait for


def test_explicit_ids_without_dotted_order_wait_for_the_named_parent(record_spans):
    parent_uuid = "a8024e23-5b82-47fd-970e-f6a5ba3f5097"
    own = "0ec6b845-18b9-4aa1-8f1b-6ba3f9fdefd6"

    def body(tracer):
        attributes = {"langsmith.span.id": own, "langsmith.span.parent_id": parent_uuid.upper()}
        with tracer.start_as_current_span("x", attributes=attributes):
            pass

    (span,) = record_spans(body)
    run = convert(span)
    assert run.run_id == own and run.parent == run_key(parent_uuid)


def test_malformed_explicit_ids_are_logged_and_ignored(record_spans, caplog):
    def body(tracer):
        attrs = {"langsmith.span.id": "not-a-uuid", "langsmith.span.dotted_order": "20240919T1716Zxyz"}
        with tracer.start_as_current_span("x", attributes=attrs):
            pass

    (span,) = record_spans(body)
    with caplog.at_level(logging.DEBUG, logger="otel_langsmith"):
        run = convert(span)
    assert run.run_id == ids.root_run_id(span.context.trace_id)
    assert "langsmith.span.id" in caplog.text and "dotted_order" in caplog.text


def test_error_from_status_and_the_exception_event(record_spans):
    def body(tracer):
        try:
            with tracer.start_as_current_span("fails"):
                raise KeyError("missing")
        except KeyError:
            pass
        with tracer.start_as_current_span("status-only") as span:
            span.set_status(Status(StatusCode.ERROR, "upstream said no"))
        with tracer.start_as_current_span("handled") as span:
            span.record_exception(ValueError("recovered"))

    fails, status_only, handled = (convert(s) for s in record_spans(body))
    assert fails.run["error"].startswith("KeyError: 'missing'\n\nTraceback")
    assert any(e["name"] == "exception" for e in fails.run["events"])
    assert status_only.run["error"] == "upstream said no"
    assert "error" not in handled.run
    assert handled.run["events"][0]["kwargs"]["exception.type"] == "ValueError"


def test_span_events_become_run_events_with_their_time(record_spans):
    def body(tracer):
        with tracer.start_as_current_span("x") as span:
            span.add_event("first token", {"index": 0}, timestamp=1_700_000_000_123_456_789)

    (span,) = record_spans(body)
    assert convert(span).run["events"] == [
        {"name": "first token", "time": "2023-11-14T22:13:20.123456+00:00", "kwargs": {"index": 0}}
    ]


def test_invalid_utf8_bytes_are_replaced_and_reported(record_spans, caplog):
    def body(tracer):
        with tracer.start_as_current_span("x", attributes={"raw.payload": b"ok \xff\xfe"}):
            pass

    (span,) = record_spans(body)
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        run = convert(span)
    assert run.metadata["raw.payload"] == "ok \ufffd\ufffd"
    assert "raw.payload" in caplog.text and "invalid UTF-8" in caplog.text


class _Renamed(ReadableSpan):
    """A span class of its own: what its properties say wins over the fields underneath."""

    @property
    def name(self):
        return "renamed"

    @property
    def status(self):
        return Status(StatusCode.ERROR, "said by the subclass")


def test_a_span_class_that_overrides_properties_is_read_through_them():
    context = SpanContext(0x77, 0x88, is_remote=False)
    plain = ReadableSpan(name="plain", context=context, start_time=1_000, end_time=2_000)
    renamed = _Renamed(name="plain", context=context, start_time=1_000, end_time=2_000)
    assert convert(plain).run["name"] == "plain" and "error" not in convert(plain).run
    run = convert(renamed)
    assert run.run["name"] == "renamed"
    assert run.run["error"] == "said by the subclass"
    assert (run.start_us, run.end_us) == (1, 2)


def test_thread_keys_from_langsmith_metadata_pass_down(record_spans):
    def body(tracer):
        with tracer.start_as_current_span("agent") as span:
            span.set_attribute("langsmith.metadata.thread_id", "t-1")
        with tracer.start_as_current_span("GET") as span:
            span.set_attribute("http.request.method", "GET")

    agent, http = record_spans(body)
    assert convert(agent).inherit == {"session_id": "t-1", "thread_id": "t-1"}
    assert convert(http).inherit is None
