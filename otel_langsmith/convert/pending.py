"""The converter's output: a run whose place in the LangSmith tree is not decided yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource

#: A span's OpenTelemetry identity: (trace id, span id).
OtelKey = tuple[int, int]
#: What a run hangs from: its OTel parent, or a LangSmith run id named by an explicit attribute.
ParentRef = OtelKey | str


@dataclass(slots=True, eq=False)
class PendingRun:
    """A converted span. Assembly fills ``id``, ``trace_id``, ``parent_run_id`` and ``dotted_order``.

    ``run`` already holds every other field of the run (name, run_type, inputs, outputs, events,
    error, tags, extra, project); ``metadata`` is ``run["extra"]["metadata"]``.
    """

    key: OtelKey
    run_id: str
    #: None: a LangSmith root. Otherwise the run this one waits for.
    parent: ParentRef | None
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
