"""LangSmith's own span attributes, as its OpenTelemetry docs define them and its SDK writes them.

``langsmith.*`` keys win over everything derived from the span: identity, name, run type, tags,
metadata, project; and so do its whole JSON inputs and outputs (``gen_ai.prompt`` /
``gen_ai.completion``). Identity and project are read in conversion's identity step (they decide
where the run goes); the rest through the dialect's hooks.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ... import _ids as ids
from ..dialect import RUN_TYPES, Dialect, View, kind_rule
from ..values import as_object, as_text, decode_text, json_or_text, report_once, text_list

logger = logging.getLogger(__name__)

PREFIX = "langsmith."
METADATA_PREFIX = "langsmith.metadata."


@dataclass(slots=True)
class ExplicitIdentity:
    run_id: str | None = None
    trace_id: str | None = None
    parent_run_id: str | None = None
    #: Validated: its last segment is the run, its first the trace, its second-to-last the parent.
    dotted_order: str | None = None
    start_us: int | None = None


#: What a span without ``langsmith.*`` keys names: nothing (shared, never changed).
NO_IDENTITY = ExplicitIdentity()


def _text(attributes: Mapping[str, Any], key: str) -> str | None:
    value = attributes.get(key)
    if value is None:
        return None
    if isinstance(value, bytes):
        value = decode_text(value, key)
    text = as_text(value).strip()
    return text or None


def _uuid(attributes: Mapping[str, Any], key: str) -> str | None:
    text = _text(attributes, key)
    if text is None:
        return None
    try:
        return ids.normalize_uuid(text)
    except ValueError:
        report_once(f"uuid:{key}", "Ignoring %s=%r: not a UUID", key, text)
        return None


def explicit_identity(attributes: Mapping[str, Any]) -> ExplicitIdentity:
    identity = ExplicitIdentity(
        run_id=_uuid(attributes, "langsmith.span.id"),
        trace_id=_uuid(attributes, "langsmith.trace.id"),
        parent_run_id=_uuid(attributes, "langsmith.span.parent_id"),
    )
    dotted = _text(attributes, "langsmith.span.dotted_order")
    if dotted is None:
        return identity
    try:
        segments = ids.parse_dotted_order(dotted)
    except ValueError as exc:
        report_once("dotted_order", "Ignoring langsmith.span.dotted_order: %s", exc)
        return identity
    if any(later[0] < earlier[0] for earlier, later in itertools.pairwise(segments)):
        report_once(
            "dotted_order_time", "Ignoring langsmith.span.dotted_order %r: a segment is earlier than its parent", dotted
        )
        return identity
    if len({run_id for _, run_id in segments}) < len(segments):
        # A run under itself: LangSmith would take it as its own parent.
        report_once("dotted_order_loop", "Ignoring langsmith.span.dotted_order %r: a run appears twice in it", dotted)
        return identity
    if identity.run_id is not None and identity.run_id != segments[-1][1]:
        report_once(
            "dotted_order_id",
            "langsmith.span.dotted_order ends with run %s but langsmith.span.id is %s; the dotted order wins",
            segments[-1][1],
            identity.run_id,
        )
    identity.dotted_order = ".".join(ids.segment(us, run_id) for us, run_id in segments)
    identity.start_us, identity.run_id = segments[-1]
    identity.trace_id = segments[0][1]
    identity.parent_run_id = segments[-2][1] if len(segments) > 1 else None
    return identity


def name(attributes: Mapping[str, Any]) -> str | None:
    return _text(attributes, "langsmith.trace.name")


def tags(attributes: Mapping[str, Any]) -> list[str] | None:
    value = attributes.get("langsmith.span.tags")
    if value is None:
        return None
    return text_list(value, "langsmith.span.tags")


def project(attributes: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(session_name, session_id) named on the span, either may be None."""
    return _text(attributes, "langsmith.trace.session_name"), _uuid(attributes, "langsmith.trace.session_id")


def _structured(value: Any, key: str) -> Any:
    # Only objects and arrays are parsed: a metadata value "123" is meant as text.
    if isinstance(value, bytes):
        value = decode_text(value, key)
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        return json_or_text(value, key)
    return value


def metadata(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``langsmith.metadata.{key}`` as ``{key: value}``; JSON objects and arrays are parsed."""
    found: dict[str, Any] = {}
    for key, value in attributes.items():
        if key.startswith(METADATA_PREFIX):
            short = key[len(METADATA_PREFIX) :]
            if short:
                found[short] = _structured(value, key)
    return found


# The whole inputs and outputs as JSON, which the LangSmith SDK writes (not the flattened
# ``gen_ai.prompt.N.*`` of other instrumentations: those are keys under these, never these).
INPUTS, OUTPUTS = "gen_ai.prompt", "gen_ai.completion"


def native_content(view: View, run: dict[str, Any]) -> None:
    """The run's own inputs and outputs, which win over every dialect's (asked before them)."""
    for field, key, wrap in (("inputs", INPUTS, "input"), ("outputs", OUTPUTS, "output")):
        value = view.take(key)
        if value is not None:
            run[field] = as_object(value, key, wrap)


def _content(view: View, run: dict[str, Any]) -> None:
    if "langsmith.span.kind" in view.attributes:
        # Written by the LangSmith SDK's exporter from the run type, for other OTel consumers:
        # the run already says all of it.
        view.consumed.update(("gen_ai.operation.name", "gen_ai.system", "gen_ai.tool.name"))
    found = tags(view.attributes)
    if found:
        run["tags"] = sorted({*run.get("tags", ()), *found})


def _name(view: View, run_type: str) -> str | None:
    return name(view.attributes)


DIALECT = Dialect(
    name="langsmith",
    # ``session_id`` / ``thread_id``: LangSmith's own thread keys, as plain attributes they become
    # metadata, where the thread step finds them (after every dialect's thread keys).
    reads=frozenset((PREFIX[:-1], INPUTS, OUTPUTS, "session_id", "thread_id")),
    families=frozenset(("langsmith",)),
    kinds=(kind_rule(("langsmith.span.kind",), {kind: kind for kind in RUN_TYPES}, None),),
    content=_content,
    name_of=_name,
)
