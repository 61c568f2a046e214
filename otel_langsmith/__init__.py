"""OpenTelemetry spans to LangSmith runs.

The public API is what this module exports; every other module is private (its name starts with
an underscore) and may change in any release.

>>> from otel_langsmith import LangSmithSpanExporter
>>> exporter = LangSmithSpanExporter(project="my-app")  # no I/O until the first export

Names are imported on first use, so that installing the package (its pytest plugin and its
``opentelemetry-instrument`` entry points) costs nothing in a process that does not use it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._configure import configure
    from ._convert.redact import Hook
    from ._exporter import LangSmithSpanExporter
    from ._logs import LangSmithLogProcessor
    from ._processor import LangSmithSpanProcessor
    from ._propagation import LangSmithPropagator
    from ._retry import RetryPolicy
    from ._stats import Stats
    from .testing import LangSmithReceiver

_WHERE = {
    "Hook": "._convert.redact",
    "LangSmithLogProcessor": "._logs",
    "LangSmithPropagator": "._propagation",
    "LangSmithReceiver": ".testing",
    "LangSmithSpanExporter": "._exporter",
    "LangSmithSpanProcessor": "._processor",
    "RetryPolicy": "._retry",
    "Stats": "._stats",
    "configure": "._configure",
}

__all__ = [
    "Hook",
    "LangSmithLogProcessor",
    "LangSmithPropagator",
    "LangSmithReceiver",
    "LangSmithSpanExporter",
    "LangSmithSpanProcessor",
    "RetryPolicy",
    "Stats",
    "__version__",
    "configure",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_langsmith' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
