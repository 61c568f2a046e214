"""Span -> run, in named steps: the span's identity (its run id and the run it hangs under), its
content (name, run type, inputs, outputs, events, tags: what its dialects say), its metadata, its
thread. Each instrumentation dialect is a module of :mod:`otel_langsmith._convert.dialects`.

The converter decides everything about a run except where it sits in the LangSmith tree: that
needs the parent's ``dotted_order``, which :mod:`otel_langsmith._assembly` knows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Status, StatusCode

from .. import _ids as ids
from .._throttle import Throttled
from . import dialects, events, keys, redact, threads, values
from . import run_type as run_types
from .call import LLMCall, apply, conversation
from .conversations import Conversations
from .dialect import Dialect, GenAIEvent, View
from .dialects import langsmith
from .pending import PendingRun, RunKey, run_key
from .redact import Redaction
from .run_type import DEFAULT_RUN_TYPE, infer_run_type
from .values import decode_text, report_once, run_name

__all__ = [
    "LLM_FAMILIES",
    "PendingRun",
    "RunKey",
    "SpanConverter",
    "llm_related",
    "minimal_pending",
    "run_key",
    "span_to_pending",
    "transparent_pending",
]

logger = logging.getLogger(__name__)
# For span_to_pending's callers; a SpanConverter has its own.
_PROBLEMS = Throttled(logger, logging.WARNING)
T = TypeVar("T")


def span_to_pending(
    span: ReadableSpan,
    *,
    project: str,
    logs: Sequence[GenAIEvent] = (),
    conversations: Conversations | None = None,
) -> PendingRun:
    """Convert one finished (or still open) span; ``project`` applies unless the span names one.

    ``logs`` are the GenAI log records emitted inside the span (see :mod:`otel_langsmith._logs`);
    ``conversations`` remembers the conversations converted before (model calls repeat them).
    """
    return _convert(span, _read_fields(span), project, logs, conversations, _PROBLEMS)


def _convert(
    span: ReadableSpan,
    fields: SpanFields,
    project: str,
    logs: Sequence[GenAIEvent],
    conversations: Conversations | None,
    problems: Throttled,
) -> PendingRun:
    context, parent, span_name, start_ns, end_ns, status, resource = fields
    if context is None:  # only a hand-built ReadableSpan lacks one
        raise ValueError(f"span {span_name!r} has no context")
    span_name = run_name(span_name)
    start_ns = start_ns or 0
    attributes = _attributes(span)
    present = keys.present(tuple(attributes))
    # Most spans have no events: spare the copy ReadableSpan.events makes (under a lock) for them.
    span_events = span.events if getattr(span, "_events", True) else ()
    if (
        not span_events
        and keys.answer(present, ("plain", id(run_types.RULES)), _plain)
        and run_types.span_name(attributes, span_name) is None
        and status.status_code is not StatusCode.ERROR
        and (parent is None or not parent.is_remote)
    ):
        return _plain_pending(context, parent, span_name, start_ns, end_ns, attributes, project, resource)

    view = View(
        span=span,
        attributes=attributes,
        present=present,
        events=span_events,
        logs=logs,
        start_ns=start_ns,
        end_ns=end_ns,
        conversations=conversations,
        problems=problems,
    )
    # LangSmith's own keys are on few spans: one look at the keys spares their lookups.
    native = "langsmith" in present
    identity = langsmith.explicit_identity(attributes) if native else langsmith.NO_IDENTITY
    run_id, key, parent_ref = _identity(context, parent, identity, view.metadata)
    run = _content(view, span_name)
    if status.status_code is StatusCode.ERROR:
        run["error"] = _hooked(view, events.error, status, span_events) or "ERROR"
    session_name, session_id = langsmith.project(attributes) if native else (None, None)
    if session_id is not None:
        run["session_id"] = session_id
    if session_name is not None or session_id is None:
        run["session_name"] = session_name or project
    metadata = _metadata(view, native)
    inherit = _hooked(view, threads.thread, attributes, present, metadata) or {}
    for name, value in inherit.items():
        metadata.setdefault(name, value)
    _otel_ids(metadata, context, run_id if identity.run_id is None and parent is not None else None)
    run["extra"] = {"metadata": metadata}

    start_us, end_us = _times(start_ns, end_ns, metadata)
    explicit_order = identity.dotted_order is not None
    return PendingRun(
        span_id=context.span_id,
        otel_trace_id=context.trace_id,
        run_id=run_id,
        key=key,
        parent=parent_ref,
        start_us=identity.start_us if identity.start_us is not None else start_us,
        end_us=end_us,
        run=run,
        metadata=metadata,
        resource=resource,
        project_explicit=session_name is not None or session_id is not None,
        dotted_order=identity.dotted_order,
        trace_id=identity.trace_id if explicit_order else None,
        parent_run_id=identity.parent_run_id if explicit_order else None,
        inherit=inherit or None,
    )


def _identity(
    context: Any, parent: Any, identity: langsmith.ExplicitIdentity, metadata: dict[str, Any]
) -> tuple[str, RunKey, RunKey | None]:
    """The run's id, its key, and the key of the run it hangs under (None: a LangSmith root)."""
    if identity.run_id is not None and not _claims_an_ancestor(identity.run_id, context, parent):
        run_id, key = identity.run_id, run_key(identity.run_id)
    else:
        run_id, key = ids.derived_run_id(context.trace_id, context.span_id, root=parent is None)
    if identity.dotted_order is not None:
        if parent is not None and not parent.is_remote and identity.parent_run_id in _run_ids_of(context, parent):
            # The order names the OTel parent's run: placed after it, so that a start time the
            # order got wrong gives way to the parent's own place.
            return run_id, key, parent.span_id
        return run_id, key, None
    if identity.parent_run_id is not None:
        return run_id, key, run_key(identity.parent_run_id)
    if identity.trace_id is not None and identity.trace_id != run_id:
        # A trace named without a parent: the span hangs directly under the trace's root.
        return run_id, key, run_key(identity.trace_id)
    if parent is None:
        return run_id, key, None
    if parent.is_remote:
        # The caller's run lives in another process and no LangSmith context came with it:
        # this span starts a LangSmith trace of its own, and says where it came from.
        metadata["OTEL_PARENT_SPAN_ID"] = ids.span_hex(parent.span_id)
        metadata["OTEL_PARENT_IS_REMOTE"] = True
        return run_id, key, None
    return run_id, key, parent.span_id


def _run_ids_of(context: Any, parent: Any) -> tuple[str, str]:
    """The run ids the OTel parent's run may have: its span's, or its trace root's if it is the root."""
    return ids.span_run_id(parent.span_id), ids.root_run_id(context.trace_id)


def _claims_an_ancestor(run_id: str, context: Any, parent: Any) -> bool:
    """Whether an explicit ``langsmith.span.id`` is its OTel parent's run id or its trace root's: a
    run would then overwrite an ancestor and hang under itself. Said once, and the span's own id
    is used."""
    if parent is None or parent.is_remote:
        return False
    if run_id not in _run_ids_of(context, parent):
        return False
    report_once(
        "langsmith_id_ancestor", "Ignoring langsmith.span.id %s: it is the run id of the span's parent or root", run_id
    )
    return True


def _content(view: View, span_name: str) -> dict[str, Any]:
    """Name, run type, inputs, outputs, events and tags, as the span's dialects say them."""
    plan = _plan_of(view)
    run_type = infer_run_type(view.attributes, span_name, view.present)
    name = span_name
    for name_of in plan.names:
        found = _hooked(view, name_of, view, run_type)
        if found:
            name = found
            break
    run: dict[str, Any] = {"name": name, "run_type": run_type}
    if plan.native:
        _hooked(view, langsmith.native_content, view, run)  # before every dialect: they fill only what is empty
    if view.events:
        run["events"] = _hooked(view, events.events, view.events) or []
    if plan.calls and run_type not in _NO_CONVERSATION:
        call = LLMCall()
        for read in plan.calls:
            _hooked(view, read, view, call)
        if run_type in _MODEL_CALLS:
            _hooked(view, apply, call, run, view.metadata)
        else:
            _hooked(view, conversation, call, run)
    for fill in plan.contents:
        _hooked(view, fill, view, run)
    return run


def _hooked(view: View, hook: Callable[..., T], *args: Any) -> T | None:
    """One step of a span's conversion. What it raises on a value no dialect foresaw costs what
    that step would have written, not the rest of the run: the run says which step failed, and
    the log says so once in a while."""
    try:
        return hook(*args)
    except Exception as exc:
        step = f"{hook.__module__.rpartition('.')[2]}.{hook.__name__}"
        view.metadata.setdefault("otel_langsmith_conversion_error", f"{step} raised {type(exc).__name__}")
        # The exception's text may quote attribute values: the type only, the traceback at debug.
        view.problems.report(
            1,
            "Part of span %r could not be converted (%s raised %s); the rest of its run is sent",
            view.span.name,
            step,
            type(exc).__name__,
        )
        logger.debug("%s failed on span %r", step, view.span.name, exc_info=True)
        return None


_MODEL_CALLS = frozenset(("llm", "embedding"))
# Runs whose content is not a conversation: a tool's arguments and result, a retriever's documents.
_NO_CONVERSATION = frozenset(("tool", "retriever"))


class _Plan(NamedTuple):
    """The hooks of the dialects a span is asked, in priority order."""

    names: tuple[Callable[[View, str], str | None], ...]
    calls: tuple[Callable[[View, LLMCall], None], ...]
    contents: tuple[Callable[[View, dict[str, Any]], None], ...]
    #: LangSmith's own inputs and outputs may be there.
    native: bool


def _plan(found: tuple[Dialect, ...]) -> _Plan:
    return _Plan(
        names=tuple(dialect.name_of for dialect in found if dialect.name_of is not None),
        calls=tuple(dialect.call for dialect in found if dialect.call is not None),
        contents=tuple(dialect.content for dialect in found if dialect.content is not None),
        native=langsmith.DIALECT in found,
    )


def _plans(present: frozenset[str], question: object) -> tuple[tuple[Dialect, ...], _Plan | None]:
    """The dialects a key set asks, and their plan when none of them is bound to a library."""
    found = dialects.asked(present, question)
    return found, None if any(dialect.scope for dialect in found) else _plan(found)


def _plan_of(view: View) -> _Plan:
    found: tuple[Dialect, ...]
    plan: _Plan | None
    found, plan = keys.answer(view.present, dialects.DIALECTS, _plans)
    if plan is not None:
        return plan
    # Worked out per span: library names are few, but nothing bounds how many a process makes.
    scope = view.scope
    return _plan(tuple(dialect for dialect in found if scope.startswith(dialect.scope)))


def _metadata(view: View, native: bool) -> dict[str, Any]:
    """Every attribute no dialect consumed, then what the dialects wrote (which wins)."""
    # ``attributes`` is the conversion's own copy: a span nothing consumed (an HTTP or a database
    # span) keeps it as it is.
    passthrough = view.attributes
    if view.consumed:
        passthrough = {name: value for name, value in passthrough.items() if name not in view.consumed}
    if native:
        passthrough = {name: value for name, value in passthrough.items() if not name.startswith(langsmith.PREFIX)}
    _decode_bytes(passthrough)
    passthrough.update(view.metadata)
    if native:
        passthrough.update(langsmith.metadata(view.attributes))
    return passthrough


#: The attribute families of the LLM dialects: a span with any of them is LLM-related.
LLM_FAMILIES = dialects.LLM_FAMILIES


def llm_related(span: ReadableSpan) -> bool:
    """Whether a supported dialect recognises the span as part of an LLM application: it has a key
    of their families, or a name they give model, tool and embedding calls."""
    attributes = span.attributes or {}
    present = keys.present(tuple(attributes))
    if not LLM_FAMILIES.isdisjoint(present):
        return True
    return run_types.span_name(attributes, span.name) is not None


def _plain(present: frozenset[str], question: object) -> bool:
    """No dialect reads any of the keys: only the span's name could still make it more than a
    chain (``span_name`` is the one rule that applies to every span)."""
    return run_types.applicable(present, question) == (run_types.span_name,) and dialects.KEYS.isdisjoint(present)


def _plain_pending(
    context: Any,
    parent: Any,
    span_name: str,
    start_ns: int,
    end_ns: int | None,
    attributes: dict[str, Any],
    project: str,
    resource: Resource | None,
) -> PendingRun:
    """What :func:`_convert` makes of a plain span, without asking each dialect in turn: the
    spans most applications have most of. ``tests/unit/test_hot_path.py`` holds it to the long way."""
    trace_id, span_id = context.trace_id, context.span_id
    run_id, key = ids.derived_run_id(trace_id, span_id, root=parent is None)
    metadata = attributes
    _decode_bytes(metadata)
    _otel_ids(metadata, context, run_id if parent is not None else None)
    run = {"name": span_name, "run_type": DEFAULT_RUN_TYPE, "session_name": project, "extra": {"metadata": metadata}}
    start_us, end_us = _times(start_ns, end_ns, metadata)
    return PendingRun(
        span_id=span_id,
        otel_trace_id=trace_id,
        run_id=run_id,
        key=key,
        parent=parent.span_id if parent is not None else None,
        start_us=start_us,
        end_us=end_us,
        run=run,
        metadata=metadata,
        resource=resource,
        project_explicit=False,
    )


# What a conversion reads of a span, in this order: its context, parent, name, start and end time,
# status and resource.
SpanFields = tuple[Any, Any, str, "int | None", "int | None", Status, "Resource | None"]
_FIELDS = ("context", "parent", "name", "start_time", "end_time", "status", "resource")
_read_fields: Callable[[ReadableSpan], SpanFields] = attrgetter(*_FIELDS)


# What the SDK lets an attribute be: values of other types are looked at one by one.
_ATTRIBUTE_TYPES = frozenset((str, bool, int, float, tuple))


def _decode_bytes(attributes: dict[str, Any]) -> None:
    """Bytes values made text, in place (JSON has no bytes); one C-level look when there are none."""
    if not _ATTRIBUTE_TYPES.issuperset(map(type, attributes.values())):
        for attribute, value in attributes.items():
            if isinstance(value, bytes):
                attributes[attribute] = decode_text(value, attribute)


def _times(start_ns: int, end_ns: int | None, metadata: dict[str, Any]) -> tuple[int, int | None]:
    """Start and end in microseconds; a time no run can carry (before 1970, past year 9999) is
    replaced by the time of conversion, the original kept in the metadata."""
    start_us = start_ns // 1000
    end_us = None if end_ns is None else end_ns // 1000
    if 0 <= start_us <= ids.MAX_US and (end_us is None or 0 <= end_us <= ids.MAX_US):
        return start_us, end_us
    now_us = time.time_ns() // 1000
    invalid: dict[str, int] = {}
    if not ids.valid_us(start_us):
        invalid["start_time_ns"], start_us = start_ns, now_us
    if end_ns is not None and (end_us is None or not ids.valid_us(end_us)):
        invalid["end_time_ns"], end_us = end_ns, max(start_us, now_us)
    metadata["otel_langsmith_invalid_time"] = invalid
    return start_us, end_us


def _otel_ids(metadata: dict[str, Any], context: Any, span_run_id: str | None) -> None:
    """The span's OTel trace and span ids, as every run carries them. ``span_run_id``: the run id
    :func:`ids.span_run_id` made of the span id, which holds its hex (taken back, not formatted again)."""
    metadata["OTEL_TRACE_ID"] = ids.trace_hex(context.trace_id)
    metadata["OTEL_SPAN_ID"] = (
        ids.span_hex_of_run_id(span_run_id) if span_run_id is not None else ids.span_hex(context.span_id)
    )


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    """A plain copy of the span's attributes, which every lookup below is made on.

    ``ReadableSpan.attributes`` wraps the SDK's ``BoundedAttributes`` in a mapping proxy: copying
    through both runs Python-level ``__iter__``/``__getitem__`` per key (the largest
    cost of converting an HTTP span); the dict underneath copies in C. Anything else takes the
    public way.
    """
    inner = getattr(getattr(span, "_attributes", None), "_dict", None)
    if isinstance(inner, dict):
        return dict(inner)
    attributes = span.attributes
    return dict(attributes) if attributes else {}


def transparent_pending(span: ReadableSpan) -> PendingRun | None:
    """A span the filter leaves out: only where it sits, for its children to take its place."""
    context, parent = span.context, span.parent
    if context is None:
        return None
    run_id, key = ids.derived_run_id(context.trace_id, context.span_id, root=parent is None)
    return PendingRun(
        span_id=context.span_id,
        otel_trace_id=context.trace_id,
        run_id=run_id,
        key=key,
        parent=None if parent is None or parent.is_remote else parent.span_id,
        start_us=0,
        end_us=None,
        run={},
        metadata={},
        resource=None,
        project_explicit=False,
        transparent=True,
    )


def minimal_pending(span: ReadableSpan, *, project: str, problem: str) -> PendingRun:
    """The run of a span whose attributes could not be converted: its place, name and times.

    Used when :func:`span_to_pending` fails on hostile data, so that the tree keeps its shape and
    the failure shows on the run instead of the run going missing.
    """
    context = span.context
    if context is None:
        raise ValueError(f"span {span.name!r} has no context")
    parent = span.parent
    run_id, key = ids.derived_run_id(context.trace_id, context.span_id, root=parent is None)
    parent_ref = None if parent is None or parent.is_remote else parent.span_id
    metadata: dict[str, Any] = {}
    _otel_ids(metadata, context, None)
    metadata["otel_langsmith_conversion_error"] = problem
    start_us, end_us = _times(span.start_time or 0, span.end_time, metadata)
    return PendingRun(
        span_id=context.span_id,
        otel_trace_id=context.trace_id,
        run_id=run_id,
        key=key,
        parent=parent_ref,
        start_us=start_us,
        end_us=end_us,
        run={
            "name": run_name(span.name),
            "run_type": "chain",
            "session_name": project,
            "extra": {"metadata": metadata},
        },
        metadata=metadata,
        resource=span.resource,
        project_explicit=False,
    )


class SpanConverter:
    """What the exporter and the span processor both do with a span: its log records joined,
    converted, redacted; a span that breaks a convention still sent with its place and times.

    ``logs(span_id, keep)`` returns the span's GenAI log records (``keep``: the span is still open
    and will be read again).
    """

    def __init__(
        self, *, project: str, redaction: Redaction, logs: Callable[[int, bool], Sequence[GenAIEvent]]
    ) -> None:
        self._project = project
        # Asked once: ``Redaction.active`` weighs four settings, and most converters have none.
        self._redact = redaction.apply if redaction.active else None
        self._logs = logs
        # Converted messages are shared by the runs that repeat them: not where a hook may change them.
        self._conversations = None if self._redact is not None else Conversations()
        #: Spans a convention failed on (sent with their name, place and times only).
        self.errors = 0
        self._errors_lock = threading.Lock()  # exports may convert on several threads at once
        # A step that fails costs only its part of the run; a span that fails, all but its place.
        self._problems = Throttled(logger, logging.WARNING)
        self._failures = Throttled(logger, logging.ERROR)

    def reset_after_fork(self) -> None:
        """Fresh locks for the child (another thread may have held one at the fork)."""
        self._errors_lock = threading.Lock()
        values.reset_after_fork()
        redact.reset_after_fork()
        if self._conversations is not None:
            self._conversations = Conversations()
        self._problems = Throttled(logger, logging.WARNING)
        self._failures = Throttled(logger, logging.ERROR)

    def __call__(self, span: ReadableSpan) -> PendingRun | None:
        try:
            fields = _read_fields(span)
            context, end_ns = fields[0], fields[4]
            logs = self._logs(context.span_id, end_ns is None) if context is not None else ()
            pending = _convert(span, fields, self._project, logs, self._conversations, self._problems)
            if self._redact is not None:
                self._redact(pending.run)
            return pending
        except Exception as exc:
            # Hostile data can break a convention, and a live span can change while it is read.
            with self._errors_lock:
                self.errors += 1
            self._failures.report(
                1,
                "Could not convert span %r (%s); sending its name, place and times only",
                span.name,
                type(exc).__name__,
            )
            logger.debug("Converting span %r failed", span.name, exc_info=True)
            try:
                return minimal_pending(span, project=self._project, problem=f"{type(exc).__name__}: {exc}")
            except Exception:
                logger.exception("Dropping span %r: it has no usable identity", span.name)
                return None
