"""OpenTelemetry spans to LangSmith runs.

>>> from otel_langsmith import LangSmithSpanExporter
>>> exporter = LangSmithSpanExporter(project="my-app")  # no I/O until the first export
"""

from .delivery import RetryPolicy
from .exporter import LangSmithSpanExporter
from .version import __version__

__all__ = ["LangSmithSpanExporter", "RetryPolicy", "__version__"]
