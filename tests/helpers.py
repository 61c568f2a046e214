"""Shared by the tests that start a process of their own."""

from __future__ import annotations

import os


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any LangSmith or OpenTelemetry setting, plus ``extra``:
    a child configured by the test alone, whatever the developer's shell exports."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "OTEL_"))}
    environment.update(extra)
    return environment
