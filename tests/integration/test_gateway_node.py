"""`otel-langsmith gateway` fed by another language: an agent instrumented with the OpenTelemetry
JavaScript SDK (tests/node/agent.mjs) sends its trace as OTLP/HTTP JSON, and the runs the gateway
posts must be the very runs the in-process exporter posts for the same spans.

Real processes throughout: the gateway as a child, Node as a child, two LangSmith receivers on
loopback. The Node side needs `make node` (the OpenTelemetry JS SDK under tests/node/node_modules).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import GatewayProcess, child_environment, run_child
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_langsmith.testing import LangSmithReceiver

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
AGENT = NODE_DIR / "agent.mjs"
# A package the agent imports: present once `make node` (npm ci) has run.
NODE_SDK = NODE_DIR / "node_modules" / "@opentelemetry" / "exporter-trace-otlp-http" / "package.json"

API_KEY = "test-key"
PROJECT = "node-demo"

# Metadata keys that may legitimately differ between the gateway and the in-process exporter;
# each entry says why. Empty: none does (the gateway is meant to be the exporter, unchanged).
METADATA_MAY_DIFFER: dict[str, str] = {}


def node_executable() -> str:
    """`node`, with the OpenTelemetry JS SDK installed; the test fails (never skips) without them."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20 or newer, then run `make node`", pytrace=False)
    if not NODE_SDK.exists():
        pytest.fail(
            f"the OpenTelemetry JS SDK is not installed under {NODE_DIR / 'node_modules'}: run `make node`",
            pytrace=False,
        )
    return node


@contextmanager
def running_gateway(receiver: LangSmithReceiver) -> Iterator[GatewayProcess]:
    env = {"LANGSMITH_ENDPOINT": receiver.url, "LANGSMITH_API_KEY": API_KEY, "LANGSMITH_PROJECT": PROJECT}
    with GatewayProcess("--drain", "20", env=env) as gateway:
        yield gateway


def run_agent(gateway_url: str, headers: dict[str, str] | None = None, **env: str) -> dict[str, Any]:
    """agent.mjs against the gateway; what it says it sent."""
    node = node_executable()
    completed = run_child(
        [node, str(AGENT)],
        env=child_environment(OTLP_URL=f"{gateway_url}/v1/traces", OTLP_HEADERS=json.dumps(headers or {}), **env),
        timeout=60,
        cwd=str(NODE_DIR),
    )
    assert completed.returncode == 0, f"agent.mjs failed ({completed.returncode}):\n{completed.stderr}"
    document = json.loads(completed.stdout)
    assert document["spans"], completed.stdout
    return document


# -- the same spans, made in this process with the Python SDK ----------------------------------------


class GivenIds(IdGenerator):
    """Hands out the ids set just before each span starts: the JavaScript SDK's ids."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


def _attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    # JSON arrays come back as lists; the SDK keeps sequences as tuples either way.
    return {key: tuple(value) if isinstance(value, list) else value for key, value in attributes.items()}


def replay(document: dict[str, Any], receiver: LangSmithReceiver) -> None:
    """The spans agent.mjs described, rebuilt with the Python SDK and sent through the in-process
    exporter (``LangSmithSpanExporter``) to ``receiver``."""
    ids = GivenIds()
    provider = TracerProvider(resource=Resource(document["resource"]), id_generator=ids)
    provider.add_span_processor(BatchSpanProcessor(receiver.exporter(project=PROJECT)))
    scope = document["scope"]
    tracer = provider.get_tracer(scope["name"], scope.get("version"))
    described = document["spans"]
    started: dict[str, Any] = {}
    # Parents start first (each span's parent context must exist); then spans end in the order the
    # JavaScript SDK ended (and exported) them.
    remaining = sorted(described, key=lambda span: int(span["start_ns"]))
    while remaining:
        ready = [s for s in remaining if s["parent_span_id"] is None or s["parent_span_id"] in started]
        assert ready, f"spans whose parent was not sent: {[s['name'] for s in remaining]}"
        for span in ready:
            ids.trace_id, ids.span_id = int(span["trace_id"], 16), int(span["span_id"], 16)
            parent = span["parent_span_id"]
            context = trace.set_span_in_context(started[parent]) if parent is not None else None
            made = tracer.start_span(
                span["name"],
                context=context,
                kind=SpanKind[span["kind"]],
                attributes=_attributes(span["attributes"]),
                start_time=int(span["start_ns"]),
            )
            assert made.get_span_context().trace_id == ids.trace_id
            for event in span["events"]:
                made.add_event(event["name"], _attributes(event["attributes"]), timestamp=int(event["time_ns"]))
            code = StatusCode[span["status"]["code"]]
            if code is StatusCode.ERROR:
                made.set_status(Status(code, span["status"]["message"] or None))
            elif code is StatusCode.OK:
                made.set_status(Status(code))
            started[span["span_id"]] = made
        remaining = [s for s in remaining if s["span_id"] not in started]
    for span in described:
        started[span["span_id"]].end(end_time=int(span["end_ns"]))
    provider.shutdown()


# -- comparing -----------------------------------------------------------------------------------------


def differences(gateway_runs: dict[str, dict], exporter_runs: dict[str, dict]) -> list[str]:
    found = []
    if gateway_runs.keys() != exporter_runs.keys():
        found.append(
            f"run ids differ: only the gateway's {sorted(gateway_runs.keys() - exporter_runs.keys())}, "
            f"only the exporter's {sorted(exporter_runs.keys() - gateway_runs.keys())}"
        )
    for run_id in sorted(gateway_runs.keys() & exporter_runs.keys()):
        ours, theirs = gateway_runs[run_id], exporter_runs[run_id]
        name = theirs.get("name")
        # Every field of the run, whichever side has it; extra's metadata key by key below.
        for field in sorted((ours.keys() | theirs.keys()) - {"extra"}):
            if ours.get(field) != theirs.get(field):
                found.append(
                    f"{name} ({run_id}) {field}: gateway {ours.get(field)!r} != exporter {theirs.get(field)!r}"
                )
        ours_meta = dict((ours.get("extra") or {}).get("metadata") or {})
        theirs_meta = dict((theirs.get("extra") or {}).get("metadata") or {})
        for key in sorted(ours_meta.keys() | theirs_meta.keys()):
            if key in METADATA_MAY_DIFFER:
                continue
            if ours_meta.get(key, "<absent>") != theirs_meta.get(key, "<absent>"):
                found.append(
                    f"{name} ({run_id}) extra.metadata[{key!r}]: gateway {ours_meta.get(key, '<absent>')!r} "
                    f"!= exporter {theirs_meta.get(key, '<absent>')!r}"
                )
        ours_extra = {k: v for k, v in (ours.get("extra") or {}).items() if k != "metadata"}
        theirs_extra = {k: v for k, v in (theirs.get("extra") or {}).items() if k != "metadata"}
        if ours_extra != theirs_extra:
            found.append(f"{name} ({run_id}) extra: gateway {ours_extra!r} != exporter {theirs_extra!r}")
    return found


def trees(gateway: LangSmithReceiver, exporter: LangSmithReceiver) -> str:
    return f"gateway's runs:\n{gateway.format_tree()}\nexporter's runs:\n{exporter.format_tree()}"


# -- the tests -----------------------------------------------------------------------------------------


@pytest.mark.timeout(90)
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_node_agent_through_the_gateway_matches_the_exporter(compression: str) -> None:
    node_executable()
    with LangSmithReceiver(api_key=API_KEY) as via_gateway, LangSmithReceiver(api_key=API_KEY) as in_process:
        with running_gateway(via_gateway) as gateway:
            document = run_agent(gateway.url, OTLP_COMPRESSION=compression)
            spans = document["spans"]
            arrived = via_gateway.wait_for_runs(len(spans), timeout=30)
            assert gateway.stop()[0] == 0, f"the gateway did not exit 0 at SIGTERM\n{gateway.output()}"
        tree = via_gateway.format_tree()
        assert arrived, f"{len(via_gateway.runs)} of {len(spans)} spans became runs\n{tree}\n{gateway.output()}"

        replay(document, in_process)
        assert in_process.wait_for_runs(len(spans), timeout=30), in_process.format_tree()

        report = trees(via_gateway, in_process)
        assert via_gateway.rejected == [], f"{[r.message for r in via_gateway.rejected]}\n{report}"
        assert in_process.rejected == [], f"{[r.message for r in in_process.rejected]}\n{report}"
        assert via_gateway.problems() == [], report
        assert in_process.problems() == [], report
        assert via_gateway.duplicate_posts == 0, report

        gateway_runs, exporter_runs = via_gateway.runs, in_process.runs
        # Every span is a run at the gateway's receiver, in its place in the tree.
        assert len(gateway_runs) == len(spans), report
        by_name = {run["name"]: run for run in gateway_runs.values()}
        # A tool run is named after its tool (gen_ai.tool.name), not its span.
        assert {span["name"] for span in spans} - {"execute_tool get_weather"} | {"get_weather"} == set(by_name), report
        assert all(run["session_name"] == PROJECT for run in gateway_runs.values()), report
        assert by_name["get_weather"]["run_type"] == "tool", report
        assert by_name["GET"]["parent_run_id"] == by_name["get_weather"]["id"], report
        assert sum(run["run_type"] == "llm" for run in gateway_runs.values()) == 3, report
        assert sum(bool(run.get("error")) for run in gateway_runs.values()) == 1, report

        problems = differences(gateway_runs, exporter_runs)
        assert problems == [], "\n".join(problems) + "\n" + report


@pytest.mark.timeout(90)
def test_request_headers_pick_the_project_and_the_key() -> None:
    node_executable()
    # The receiver takes only the request's own key: a run sent with the gateway's key (test-key)
    # would be refused with 401.
    with LangSmithReceiver(api_key="other-key") as receiver:
        with running_gateway(receiver) as gateway:
            document = run_agent(gateway.url, {"Langsmith-Project": "other-project", "x-api-key": "other-key"})
            arrived = receiver.wait_for_runs(len(document["spans"]), timeout=30)
            assert gateway.stop()[0] == 0, f"the gateway did not exit 0 at SIGTERM\n{gateway.output()}"
        assert arrived, f"{receiver.format_tree()}\n{[r.message for r in receiver.rejected]}\n{gateway.output()}"
        assert receiver.rejected == [], [r.message for r in receiver.rejected]
        assert receiver.problems() == [], receiver.format_tree()
        runs = receiver.runs.values()
        assert {run["session_name"] for run in runs} == {"other-project"}, receiver.format_tree()
        writes = [r for r in receiver.requests if r.method == "POST"]
        assert writes and all(r.status == 202 for r in writes), writes
