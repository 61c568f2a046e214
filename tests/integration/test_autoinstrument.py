"""Zero-code use: ``OTEL_TRACES_EXPORTER=langsmith opentelemetry-instrument python app.py``."""

import sys
from importlib.metadata import entry_points
from pathlib import Path

from helpers import child_environment, run_child
from opentelemetry.sdk.trace.export import SpanExporter

from otel_langsmith import LangSmithSpanExporter

APP = Path(__file__).parents[2] / "examples" / "instrumented_app.py"


def test_the_entry_point_names_the_exporter_class():
    (entry,) = [e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "langsmith"]
    exporter_class = entry.load()
    assert exporter_class is LangSmithSpanExporter
    assert issubclass(exporter_class, SpanExporter)


def test_opentelemetry_instrument_delivers_an_example_to_the_receiver(langsmith_receiver, tmp_path):
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    environment = child_environment(
        OTEL_TRACES_EXPORTER="langsmith",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="instrumented-example",
        LANGSMITH_ENDPOINT=langsmith_receiver.url,
        LANGSMITH_API_KEY=langsmith_receiver.api_key,
        LANGSMITH_PROJECT="zero-code",
    )
    completed = run_child([str(instrument), sys.executable, str(APP)], env=environment)
    assert completed.returncode == 0, completed.stderr
    assert langsmith_receiver.wait_for_runs(3, timeout=10), completed.stderr
    (root,) = langsmith_receiver.roots()
    assert root["name"] == "handle-request"
    assert root["session_name"] == "zero-code"
    assert root["tags"] == ["example", "instrument"]
    assert root["extra"]["metadata"]["service.name"] == "instrumented-example"
    children = langsmith_receiver.children(root["id"])
    assert [c["inputs"] for c in children] == [{"input": "what is otel?"}, {"input": "what is langsmith?"}]
    assert [c["outputs"] for c in children] == [{"output": "WHAT IS OTEL?"}, {"output": "WHAT IS LANGSMITH?"}]
    assert langsmith_receiver.rejected == []
