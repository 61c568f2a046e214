"""The exporter's waiting room: children wait here until their parent is placed.

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

from . import _ids as ids
from . import _wire as wire
from ._convert import PendingRun, RunKey, run_key
from ._convert.values import UNNAMED
from ._placement import (
    DUPLICATE_ID_KEY,
    DUPLICATE_ID_LINE,
    PlacedRegistry,
    fill,
    inherit,
    metadata_parent,
    own_identity,
    place,
)
from ._throttle import Throttled

logger = logging.getLogger(__name__)

# Placed runs are remembered so that a child arriving after its parent finds it: a few hundred
# bytes each, most of it the dotted order.
DEFAULT_MAX_PLACED_BYTES = 16 << 20
# What a waiting run that cannot be measured counts for.
_UNMEASURED_SIZE = 64 << 10


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
        return len(wire.dumps(run))  # values orjson refuses measured as they will be sent, sanitized
    except Exception:  # the encoder will say why when it meets the run; waiting must not fail
        return _UNMEASURED_SIZE


def _strip(pending: PendingRun, problem: Exception) -> None:
    """The run reduced to its name and project, the problem named in its metadata."""
    run = pending.run
    metadata = {"otel_langsmith_error": f"could not be placed: {type(problem).__name__}"}
    pending.run = {
        "name": str(run.get("name") or UNNAMED),
        "run_type": "chain",
        "session_name": run.get("session_name") if isinstance(run.get("session_name"), str) else None,
        "extra": {"metadata": metadata},
    }
    pending.metadata, pending.inherit, pending.resource = metadata, None, None


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
        max_placed_bytes: int = DEFAULT_MAX_PLACED_BYTES,
    ) -> None:
        self._max_wait = max_wait
        self._max_spans = max_spans
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._placed = PlacedRegistry(max_placed_bytes)
        # By the key they wait for: siblings are released together.
        self._children: dict[RunKey, list[_Waiting]] = {}
        # By their own keys, to find a waiting run's waiting ancestors.
        self._waiting_by_ref: dict[RunKey, _Waiting] = {}
        # Arrival order, which is also deadline order (the wait is the same for all).
        self._arrivals: OrderedDict[int, _Waiting] = OrderedDict()
        self._waiting_bytes = 0
        #: Runs released as roots because their parent did not arrive, by reason.
        self.released_as_root: Counter[str] = Counter()
        # Traces split on purpose (a gateway fed by span) release roots all the time: one line now and then.
        self._released_log = Throttled(logger, logging.WARNING)
        self._duplicates = Throttled(logger, logging.WARNING)
        #: Runs that could not be placed with their content (sent with their place and name only),
        #: and runs that could not be placed at all.
        self.errors = 0
        self.lost = 0

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
            # Whatever is left hangs below a run that waits: it waits too, unless its parent's run
            # was placed meanwhile by another span (a twin that took the run id it names).
            while in_batch_children:
                for pending in in_batch_children.popitem()[1]:
                    if pending.parent in self._placed:
                        self._place_subtree(pending, ready, in_batch_children)
                    else:
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
        self._released_log.report(
            1,
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
            self._keep_ids_apart(pending)
            refs = _refs(pending)
            if pending.transparent:
                # Left out by the span filter: its children take its place, under its parent.
                parent = self._placed.get(pending.parent) if pending.parent is not None else None
                for ref in refs:
                    self._placed.remember(ref, parent)
            else:
                try:
                    self._place(pending, refs)
                except Exception as exc:
                    if not self._place_reduced(pending, refs, exc):
                        continue  # its waiting children stay, and are released as roots in time
                ready.append(pending.run)
            # Children go on the stack last first, so that they are placed in the order they
            # arrived: of two with one run id, the first keeps it.
            below: list[PendingRun] = []
            for ref in refs:
                below += in_batch_children.pop(ref, ())
                waiting = self._children.get(ref)
                if waiting:
                    for entry in waiting[:]:  # _unwait removes each from the list
                        self._unwait(entry)
                        below.append(entry.pending)
            stack.extend(reversed(below))

    def _keep_ids_apart(self, pending: PendingRun) -> None:
        """A run whose id a placed run of another span has goes under its own span's id."""
        key = pending.key
        if key == pending.span_id or key not in self._placed:
            return
        if pending.span_id in self._placed and self._placed[pending.span_id] is self._placed[key]:
            return  # the same span, exported again
        pending.metadata[DUPLICATE_ID_KEY] = pending.run_id
        self._duplicates.report(
            1, DUPLICATE_ID_LINE, pending.run.get("name"), ids.span_hex(pending.span_id), pending.run_id
        )
        pending.run_id, pending.key, pending.dotted_order = own_identity(
            pending.span_id, pending.run_id, pending.dotted_order
        )

    def _place_reduced(self, pending: PendingRun, refs: tuple[RunKey, ...], problem: Exception) -> bool:
        """A run that could not be placed goes with its place and name only, or, failing that
        too, is lost (counted): it never costs its neighbours."""
        self.errors += 1
        logger.warning("Could not place run %r (%r); sending its place and name only", pending.run.get("name"), problem)
        _strip(pending, problem)
        try:
            self._place(pending, refs)
            return True
        except Exception:
            self.lost += 1
            logger.exception("Could not place run %r even reduced to its name: it is lost", pending.run.get("name"))
            return False

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
            llm=run.get("run_type") == "llm",
        )
        if pending.inherit:
            placed.lineage = inherit(placed.lineage, pending.inherit, ())
        fill(pending, placed, parent)
        # The run key first: the oldest go first, and a span exported again after only its run key
        # was forgotten is still known by its span id as itself, not as a twin of itself.
        for ref in reversed(refs):
            self._placed.remember(ref, placed)
