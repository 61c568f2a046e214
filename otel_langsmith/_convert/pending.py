"""The converter's output: a run whose place in the LangSmith tree is not decided yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource

#: How runs find each other: a run id as a 128-bit integer. A run derived from a span has the span
#: id as its run id (8 zero bytes, then the span id), so an OTel parent's span id *is* the key of its
#: run; a root's run is also known by its span id. Integers keep the parent registry small.
RunKey = int


def run_key(run_id: str) -> RunKey:
    """The key of a canonical run id string (as :func:`otel_langsmith.ids.format_uuid` writes them)."""
    return int(run_id.replace("-", ""), 16)


@dataclass(slots=True, eq=False)
class PendingRun:
    """A converted span. Assembly fills ``id``, ``trace_id``, ``parent_run_id`` and ``dotted_order``.

    ``run`` already holds every other field of the run (name, run_type, inputs, outputs, events,
    error, tags, extra, project); ``metadata`` is ``run["extra"]["metadata"]``.
    """

    #: The span's id, and the OTel trace id (for metadata and log lines).
    span_id: int
    otel_trace_id: int
    run_id: str
    #: ``run_key(run_id)``, worked out once.
    key: RunKey
    #: None: a LangSmith root. Otherwise the key of the run this one waits for.
    parent: RunKey | None
    start_us: int
    end_us: int | None
    run: dict[str, Any]
    metadata: dict[str, Any]
    resource: Resource | None
    #: The project was named on the span itself; otherwise a child takes its parent's.
    project_explicit: bool
    #: An explicit ``langsmith.span.dotted_order``: trusted as it is, with the ids it implies.
    dotted_order: str | None = None
    trace_id: str | None = None
    parent_run_id: str | None = None
    #: Metadata every run below this one carries too (thread and user keys).
    inherit: dict[str, Any] | None = None
    #: Left out by the span filter: not sent, its children placed where it would have been.
    transparent: bool = False
