"""Shared by the tests that start a process of their own."""

from __future__ import annotations

import os
import subprocess


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any LangSmith or OpenTelemetry setting, plus ``extra``:
    a child configured by the test alone, whatever the developer's shell exports."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "OTEL_"))}
    environment.update(extra)
    return environment


def run_child(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 120, cwd: str | None = None):
    """Run a process to its end and keep what it printed; ``env`` defaults to :func:`child_environment`."""
    return subprocess.run(
        args,
        env=child_environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
