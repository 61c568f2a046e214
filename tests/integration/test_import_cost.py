"""Installing the package costs nothing in a process that does not use it: pytest loads the plugin
in every session, and ``opentelemetry-instrument`` loads the entry points in every run."""

from __future__ import annotations

import json
import sys

from helpers import run_child

HEAVY = ("requests", "urllib3", "orjson", "zstandard", "opentelemetry.sdk.trace", "otel_langsmith._pipeline")


def modules_after(statement: str) -> set[str]:
    script = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    completed = run_child([sys.executable, "-c", script])
    assert completed.returncode == 0, completed.stderr
    return set(json.loads(completed.stdout))


def test_the_pytest_plugin_and_the_package_root_import_nothing_heavy():
    for statement in ("import otel_langsmith._pytest_plugin", "import otel_langsmith"):
        loaded = modules_after(statement)
        assert not loaded & set(HEAVY), (statement, loaded & set(HEAVY))


def test_a_public_name_is_imported_on_first_use():
    loaded = modules_after("import otel_langsmith\notel_langsmith.LangSmithSpanExporter")
    assert "otel_langsmith._pipeline" in loaded and "requests" in loaded
