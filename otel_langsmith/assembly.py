"""Placing runs in their LangSmith tree (DESIGN.md D2 and D3).

A run can be sent only once its parent's ``dotted_order`` is known. Behind a ``BatchSpanProcessor``
children end, and so arrive, before their parents: they wait here, bounded in count and bytes,
until the parent is placed, and are then released with it, a whole subtree at a time. A span that
waits too long, that the buffer has no room for, or that is still waiting at shutdown has its
top-most waiting ancestor sent as a LangSmith root, the missing parent named in its metadata.
Nothing leaves this module silently: every such release is logged and counted.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.sdk.resources import Resource

from . import ids
from .convert import PendingRun, RunKey, run_key

logger = logging.getLogger(__name__)

# Placed runs are remembered so that a child arriving after its parent finds it: about 410 bytes a
# run (its dotted order, most of it; measured on benchmarks/spanmix.py). Children rarely arrive long
# after their parent, so the oldest are forgotten first; this bounds the registry near 24 MiB.
DEFAULT_MAX_PLACED = 60_000


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


def _refs(pending: PendingRun) -> tuple[RunKey, ...]:
    """The keys a run is known by: its span id and, when it differs, its run id."""
    return (pending.span_id,) if pending.key == pending.span_id else (pending.span_id, pending.key)


@dataclass(slots=True, eq=False)
class _Waiting:
    pending: PendingRun
    deadline: float
    size: int


def _estimate_size(run: dict[str, Any]) -> int:
    try:
        return len(orjson.dumps(run, default=str))
    except TypeError:  # values the wire layer will sanitize: a rough size is enough here
        return len(repr(run))


def _resource_metadata(resource: Resource | None) -> dict[str, Any]:
    return dict(resource.attributes) if resource is not None else {}


class Assembler:
    """Thread-safe. ``add``, ``expire`` and ``drain`` return runs ready to send, parents first.

    >>> assembler = Assembler(max_wait=60.0, max_spans=1000, max_bytes=1 << 20)
    >>> assembler.add([], now=0.0)
    []
    """

    def __init__(
        self,
        *,
        max_wait: float,
        max_spans: int,
        max_bytes: int,
        max_placed: int = DEFAULT_MAX_PLACED,
    ) -> None:
        self._max_wait = max_wait
        self._max_spans = max_spans
        self._max_bytes = max_bytes
        self._max_placed = max_placed
        self._lock = threading.Lock()
        self._placed: OrderedDict[RunKey, Placed] = OrderedDict()
        # By the key they wait for: siblings are released together.
        self._children: dict[RunKey, list[_Waiting]] = {}
        # By their own keys, to find a waiting run's waiting ancestors.
        self._waiting_by_ref: dict[RunKey, _Waiting] = {}
        # Arrival order, which is also deadline order (the wait is the same for all).
        self._arrivals: OrderedDict[int, _Waiting] = OrderedDict()
        self._waiting_bytes = 0
        #: Runs released as roots because their parent did not arrive, by reason.
        self.released_as_root: Counter[str] = Counter()

    @property
    def waiting(self) -> int:
        return len(self._arrivals)

    @property
    def waiting_bytes(self) -> int:
        return self._waiting_bytes

    def next_deadline(self) -> float | None:
        with self._lock:
            first = next(iter(self._arrivals.values()), None)
            return first.deadline if first is not None else None

    def add(self, pendings: Iterable[PendingRun], *, now: float) -> list[dict[str, Any]]:
        """Place what can be placed, keep the rest waiting; release what exceeds the bounds."""
        ready: list[dict[str, Any]] = []
        with self._lock:
            batch: dict[RunKey, PendingRun] = {}
            items = list(pendings)
            for pending in items:
                for ref in _refs(pending):
                    batch[ref] = pending
            placeable: list[PendingRun] = []
            # Children of a parent in the same batch need no size accounting unless the parent waits.
            in_batch_children: dict[RunKey, list[PendingRun]] = {}
            for pending in items:
                parent = pending.parent
                if parent is None or parent in self._placed:
                    placeable.append(pending)
                elif parent in batch and batch[parent] is not pending:
                    in_batch_children.setdefault(batch[parent].span_id, []).append(pending)
                else:
                    self._wait(pending, now)
            for pending in placeable:
                self._place_subtree(pending, ready, in_batch_children)
            # Whatever is left hangs below a run that waits: it waits too.
            for children in in_batch_children.values():
                for pending in children:
                    self._wait(pending, now)
            while len(self._arrivals) > self._max_spans or self._waiting_bytes > self._max_bytes:
                self._release_oldest("buffer_full", ready)
        return ready

    def expire(self, *, now: float) -> list[dict[str, Any]]:
        """Release, as roots, the waiting subtrees whose wait has run out."""
        ready: list[dict[str, Any]] = []
        with self._lock:
            while self._arrivals and next(iter(self._arrivals.values())).deadline <= now:
                self._release_oldest("timeout", ready)
        return ready

    def drain(self, reason: str) -> list[dict[str, Any]]:
        """Release everything still waiting (at shutdown), as roots."""
        ready: list[dict[str, Any]] = []
        with self._lock:
            while self._arrivals:
                self._release_oldest(reason, ready)
        return ready

    # -- internals; the lock is held --------------------------------------------------------

    def _wait(self, pending: PendingRun, now: float) -> None:
        entry = _Waiting(pending, now + self._max_wait, _estimate_size(pending.run))
        assert pending.parent is not None
        self._children.setdefault(pending.parent, []).append(entry)
        for ref in _refs(pending):
            self._waiting_by_ref[ref] = entry
        self._arrivals[id(entry)] = entry
        self._waiting_bytes += entry.size

    def _unwait(self, entry: _Waiting) -> None:
        pending = entry.pending
        del self._arrivals[id(entry)]
        self._waiting_bytes -= entry.size
        for ref in _refs(pending):
            self._waiting_by_ref.pop(ref, None)
        assert pending.parent is not None
        siblings = self._children.get(pending.parent)
        if siblings is not None:
            siblings.remove(entry)
            if not siblings:
                del self._children[pending.parent]

    def _release_oldest(self, reason: str, ready: list[dict[str, Any]]) -> None:
        entry = next(iter(self._arrivals.values()))
        # Sending a waiting run as a root while its own parent waits too would split the tree
        # further: the top-most waiting ancestor goes, and everything below it with it.
        seen = {id(entry)}
        while True:
            above = self._waiting_by_ref.get(entry.pending.parent)  # type: ignore[arg-type]
            if above is None or id(above) in seen:
                break
            seen.add(id(above))
            entry = above
        self._unwait(entry)
        pending = entry.pending
        missing = pending.parent
        assert missing is not None
        if missing < 1 << 64:
            pending.metadata["OTEL_PARENT_SPAN_ID"] = ids.span_hex(missing)
        else:  # a run named by an explicit langsmith.span.parent_id
            pending.metadata["LANGSMITH_PARENT_RUN_ID"] = ids.format_uuid(missing)
        pending.metadata["OTEL_PARENT_MISSING"] = reason
        pending.parent = None
        before = len(ready)
        self._place_subtree(pending, ready, {})
        self.released_as_root[reason] += 1
        logger.warning(
            "Parent %s of span %s (trace %032x) not seen (%s): sent the span as a LangSmith root "
            "with %d waiting descendant(s)",
            metadata_parent(pending.metadata),
            ids.span_hex(pending.span_id),
            pending.otel_trace_id,
            reason,
            len(ready) - before - 1,
        )

    def _place_subtree(
        self,
        root: PendingRun,
        ready: list[dict[str, Any]],
        in_batch_children: dict[RunKey, list[PendingRun]],
    ) -> None:
        stack = [root]
        while stack:
            pending = stack.pop()
            refs = _refs(pending)
            self._place(pending, refs)
            ready.append(pending.run)
            for ref in refs:
                stack.extend(in_batch_children.pop(ref, ()))
                waiting = self._children.get(ref)
                if waiting:
                    for entry in waiting[:]:  # _unwait removes each from the list
                        self._unwait(entry)
                        stack.append(entry.pending)

    def _place(self, pending: PendingRun, refs: tuple[RunKey, ...]) -> None:
        if pending.dotted_order is not None:
            # The parent matters only for the project and resource: the explicit order is trusted.
            parent_id = pending.parent_run_id
            parent = self._placed.get(run_key(parent_id)) if parent_id is not None else None
        else:
            parent = self._placed.get(pending.parent) if pending.parent is not None else None
        run = pending.run
        placed = place(
            pending.run_id,
            pending.start_us,
            parent,
            session_name=run.get("session_name"),
            session_id=run.get("session_id"),
            project_explicit=pending.project_explicit,
            resource=pending.resource,
            dotted_order=pending.dotted_order,
        )
        if pending.inherit:
            placed.lineage = inherit(placed.lineage, pending.inherit, ())
        fill(pending, placed, parent)
        for ref in refs:
            self._remember(ref, placed)

    def _remember(self, ref: RunKey, placed: Placed) -> None:
        placed_runs = self._placed
        if ref in placed_runs:  # placed again (a span exported twice): it is the newest now
            placed_runs.move_to_end(ref)
        placed_runs[ref] = placed
        if len(placed_runs) > self._max_placed:
            # popitem, not del of next(iter()): a dict drained from the front scans its holes.
            placed_runs.popitem(last=False)


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
) -> Placed:
    """Where a run goes: under ``parent``, or as a root when it is None (D2).

    An explicit ``dotted_order`` is taken as it is. A child that starts before its parent (clock
    skew, explicit start times) is clamped to its parent's start, which the server would otherwise
    reject, as the LangSmith SDK does. A child names no project of its own unless it said so.
    """
    if parent is not None and not project_explicit:
        session_name, session_id = parent.session_name, parent.session_id
    lineage = parent.lineage if parent is not None else None
    if dotted_order is not None:
        return Placed.from_dotted_order(
            dotted_order, start_us, session_name=session_name, session_id=session_id, resource=resource, lineage=lineage
        )
    if parent is None:
        return Placed(ids.segment(start_us, run_id), start_us, run_id, session_name, session_id, resource)
    if start_us < parent.start_us:
        start_us = parent.start_us
    dotted_order = f"{parent.dotted_order}.{ids.segment(start_us, run_id)}"
    return Placed(dotted_order, start_us, parent.trace_id, session_name, session_id, resource, lineage)


def inherit(lineage: Lineage | None, metadata: dict[str, Any], tags: tuple[str, ...]) -> Lineage:
    """A lineage with more metadata and tags (the closer run's values win)."""
    base = lineage or Lineage({}, ())
    return Lineage({**base.metadata, **metadata}, tuple(sorted({*base.tags, *tags})))


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


def metadata_parent(metadata: dict[str, Any]) -> str:
    """How a released root names its missing parent, for log lines."""
    span_id = metadata.get("OTEL_PARENT_SPAN_ID")
    return f"span {span_id}" if span_id is not None else f"run {metadata.get('LANGSMITH_PARENT_RUN_ID')}"
