"""Where a run goes in its LangSmith tree: its ``dotted_order``, trace, parent and project.

Pure functions over :class:`Placed` values, shared by the two ways a span gets its place: the
exporter's assembler (:mod:`otel_langsmith._assembly`), which places a span once its parent has
arrived, and the span processor (:mod:`otel_langsmith._live`), which places it from its parent and
start time, known when it starts.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource

from . import _ids as ids
from ._convert import PendingRun
from ._convert.call import nested_usage


@dataclass(frozen=True, slots=True)
class Lineage:
    """What a trace inherits from a caller in another process (LangSmith's distributed tracing)."""

    metadata: dict[str, Any]
    tags: tuple[str, ...]


# A dotted_order segment: 22 characters of start time, then a 36-character run id.
_SEGMENT = 58


@dataclass(slots=True)
class Placed:
    """What a child needs of its parent once the parent is placed."""

    dotted_order: str
    start_us: int
    #: The trace's root run id: one string shared by the whole trace, not sliced out per run.
    trace_id: str
    session_name: str | None
    session_id: str | None
    resource: Resource | None
    lineage: Lineage | None = None
    #: A model call: an LLM run right below it is the same call traced a second time.
    llm: bool = False

    @classmethod
    def from_dotted_order(
        cls,
        dotted_order: str,
        start_us: int,
        *,
        session_name: str | None,
        session_id: str | None,
        resource: Resource | None,
        lineage: Lineage | None = None,
    ) -> Placed:
        """A placement given as a whole ``dotted_order`` (explicit, or from a remote caller)."""
        return cls(dotted_order, start_us, dotted_order[22:_SEGMENT], session_name, session_id, resource, lineage)

    @property
    def run_id(self) -> str:
        return self.dotted_order[-36:]

    @property
    def parent_run_id(self) -> str | None:
        # Segments are fixed-width: the parent's id ends where the last segment and its dot begin.
        order = self.dotted_order
        return order[-_SEGMENT - 37 : -_SEGMENT - 1] if len(order) > _SEGMENT else None


# What remembering a placement costs beyond its dotted order: the Placed, its dict entry, its key.
_PLACED_OVERHEAD = 250


class PlacedRegistry(OrderedDict[int, "Placed | None"]):
    """Placements kept for the children that arrive after their parent, by run key, bounded in
    bytes: the oldest are forgotten first (children rarely come long after their parent). Reads
    are a dict's; :meth:`remember` is the only way in. A span the filter left out is kept with the
    placement its children take (None: they are roots). Not thread-safe: its owner holds a lock."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self._max_bytes = max_bytes
        self.bytes = 0

    def remember(self, key: int, placed: Placed | None) -> None:
        if key in self:  # placed again (a span exported twice): the newest now
            self.bytes -= _cost(self.pop(key))
        self[key] = placed
        self.bytes += _cost(placed)
        while self.bytes > self._max_bytes and len(self) > 1:
            # popitem, not del of next(iter()): a dict drained from the front scans its holes.
            self.bytes -= _cost(self.popitem(last=False)[1])


def _cost(placed: Placed | None) -> int:
    return _PLACED_OVERHEAD + (len(placed.dotted_order) if placed is not None else 0)


def place(
    run_id: str,
    start_us: int,
    parent: Placed | None,
    *,
    session_name: str | None,
    session_id: str | None,
    project_explicit: bool,
    resource: Resource | None,
    dotted_order: str | None = None,
    llm: bool = False,
) -> Placed:
    """Where a run goes: under ``parent``, or as a root when it is None (D2).

    An explicit ``dotted_order`` is taken as it is. A child that starts before its parent (clock
    skew, explicit start times) is clamped to its parent's start, which the server would otherwise
    reject, as the LangSmith SDK does. A child names no project of its own unless it said so.
    """
    if parent is not None and not project_explicit and (parent.session_name or parent.session_id):
        session_name, session_id = parent.session_name, parent.session_id
    lineage = parent.lineage if parent is not None else None
    if dotted_order is not None and parent is not None and _names_as_parent(dotted_order, parent):
        # The parent is known here, and placed elsewhere than the order says (another clock wrote
        # its start): the run goes under the parent as placed, or LangSmith could not place it.
        start_us = max(start_us, parent.start_us)
        dotted_order = f"{parent.dotted_order}.{ids.segment(start_us, dotted_order[-36:])}"
    if dotted_order is not None:
        placed = Placed.from_dotted_order(
            dotted_order, start_us, session_name=session_name, session_id=session_id, resource=resource, lineage=lineage
        )
    elif parent is None:
        placed = Placed(ids.segment(start_us, run_id), start_us, run_id, session_name, session_id, resource)
    else:
        if start_us < parent.start_us:
            start_us = parent.start_us
        dotted_order = f"{parent.dotted_order}.{ids.segment(start_us, run_id)}"
        placed = Placed(dotted_order, start_us, parent.trace_id, session_name, session_id, resource, lineage)
    placed.llm = llm
    return placed


#: The metadata key of a run that could not keep the run id it asked for, and the log line said
#: (throttled) with the span's name, its span id and that run id.
DUPLICATE_ID_KEY = "otel_langsmith_duplicate_run_id"
DUPLICATE_ID_LINE = "Span %r (%s) has run id %s, which another span's run has already: sent under its own id"


def own_identity(span_id: int, run_id: str, dotted_order: str | None) -> tuple[str, int, str | None]:
    """The run id, key and explicit dotted order of a span whose run id is another span's run's
    already (two spans with one ``langsmith.span.id``, two roots of one trace): its own span's id,
    in the same place. One id would send one run over the other."""
    own = ids.span_run_id(span_id)
    if dotted_order is not None and dotted_order.endswith(run_id):
        dotted_order = dotted_order[: -len(run_id)] + own
    return own, span_id, dotted_order


def _names_as_parent(dotted_order: str, parent: Placed) -> bool:
    """Whether ``dotted_order`` names ``parent``'s run as its parent, under another order than the
    parent's own."""
    if len(dotted_order) <= _SEGMENT or dotted_order[-_SEGMENT - 37 : -_SEGMENT - 1] != parent.run_id:
        return False
    return dotted_order[: -_SEGMENT - 1] != parent.dotted_order


def inherit(lineage: Lineage | None, metadata: dict[str, Any], tags: tuple[str, ...]) -> Lineage:
    """A lineage with more metadata and tags (the closer run's values win)."""
    base = lineage or Lineage({}, ())
    return Lineage({**base.metadata, **metadata}, tuple(sorted({*base.tags, *tags})))


def _resource_metadata(resource: Resource | None) -> dict[str, Any]:
    return dict(resource.attributes) if resource is not None else {}


def fill(pending: PendingRun, placed: Placed, parent: Placed | None) -> None:
    """Write a placement into the run: ids, dotted order, times, project, what the trace inherits."""
    run = pending.run
    run["id"] = pending.run_id
    run["trace_id"] = placed.trace_id
    run["dotted_order"] = placed.dotted_order
    parent_run_id = placed.parent_run_id
    if parent_run_id is not None:
        run["parent_run_id"] = parent_run_id
    start_us = placed.start_us
    run["start_time"] = ids.iso_time(start_us)
    end_us = pending.end_us
    if end_us is not None:
        run["end_time"] = ids.iso_time(end_us if end_us > start_us else start_us)
    # The placement decides the project: a child says its parent's unless it named its own.
    if placed.session_name is not None:
        run["session_name"] = placed.session_name
    else:
        run.pop("session_name", None)
    if placed.session_id is not None:
        run["session_id"] = placed.session_id
    else:
        run.pop("session_id", None)
    # The resource is the same for every span of a process: say it once per trace, and again only
    # where it changes (a run below a remote call, say).
    if parent is None or (parent.resource is not pending.resource and parent.resource != pending.resource):
        for key, value in _resource_metadata(pending.resource).items():
            pending.metadata.setdefault(key, value)
    if placed.lineage is not None:
        for key, value in placed.lineage.metadata.items():
            pending.metadata.setdefault(key, value)
        if placed.lineage.tags:
            run["tags"] = sorted({*run.get("tags", ()), *placed.lineage.tags})
    if parent is not None and parent.llm and run.get("run_type") == "llm":
        nested_usage(run, pending.metadata)


def metadata_parent(metadata: dict[str, Any]) -> str:
    """How a released root names its missing parent, for log lines."""
    span_id = metadata.get("OTEL_PARENT_SPAN_ID")
    return f"span {span_id}" if span_id is not None else f"run {metadata.get('LANGSMITH_PARENT_RUN_ID')}"
