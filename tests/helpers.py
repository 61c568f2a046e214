"""Shared by the tests that start a process of their own."""

from __future__ import annotations

import os
import subprocess

from otel_langsmith._pipeline import Pipeline
from otel_langsmith._settings import Settings


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


class FakeClock:
    """A monotonic clock that moves only when told: timeouts are seen without waiting for them."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def front_with_clock(front_class, clock, **options):
    """A ``LangSmithSpanExporter`` or ``LangSmithSpanProcessor`` whose pipeline runs on ``clock``."""
    front = front_class.__new__(front_class)
    front._pipeline = Pipeline(Settings.resolve(**options), name=front_class.__name__, clock=clock)
    return front
