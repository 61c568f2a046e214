"""OpenTelemetry spans to LangSmith runs.

>>> from otel_langsmith import LangSmithSpanExporter
>>> exporter = LangSmithSpanExporter(project="my-app")  # no I/O until the first export
"""

from .configuration import configure
from .delivery import RetryPolicy
from .exporter import LangSmithSpanExporter
from .logs import LangSmithLogProcessor
from .processor import LangSmithSpanProcessor
from .propagation import LangSmithPropagator
from .version import __version__

__all__ = [
    "LangSmithLogProcessor",
    "LangSmithPropagator",
    "LangSmithSpanExporter",
    "LangSmithSpanProcessor",
    "RetryPolicy",
    "__version__",
    "configure",
]
