"""Run ``inputs`` and ``outputs`` from the generic content attributes every convention agrees on.

LangSmith's own (``gen_ai.prompt`` / ``gen_ai.completion``, the whole JSON inputs and outputs) win
over everything; OpenInference's ``input.value`` / ``output.value`` and Traceloop's
``traceloop.entity.input`` / ``traceloop.entity.output`` fill what the conventions for model, tool
and retriever runs left empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .values import as_object

NATIVE_INPUT_KEYS = ("gen_ai.prompt",)
NATIVE_OUTPUT_KEYS = ("gen_ai.completion",)
INPUT_KEYS = ("input.value", "traceloop.entity.input")
OUTPUT_KEYS = ("output.value", "traceloop.entity.output")
_NATIVE_KEYS = frozenset((*NATIVE_INPUT_KEYS, *NATIVE_OUTPUT_KEYS))
_GENERIC_KEYS = frozenset((*INPUT_KEYS, *OUTPUT_KEYS))
# OpenInference says how to read input.value / output.value; once they are parsed it adds nothing.
_COMPANIONS = {"input.value": "input.mime_type", "output.value": "output.mime_type"}


def _first(
    attributes: Mapping[str, Any], keys: tuple[str, ...], wrap_key: str, consumed: set[str]
) -> dict[str, Any] | None:
    """The first of ``keys`` present, as an object; the key (and its companion) join ``consumed``."""
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            consumed.add(key)
            companion = _COMPANIONS.get(key)
            if companion is not None:
                consumed.add(companion)
                if not _json_mime(attributes.get(companion)):
                    return {wrap_key: value}  # declared as text: kept as text, whatever it looks like
            return as_object(value, key, wrap_key)
    return None


def _json_mime(mime_type: Any) -> bool:
    """No mime type (most instrumentations write none), or a JSON one."""
    return mime_type is None or (isinstance(mime_type, str) and "json" in mime_type.lower())


def native(attributes: Mapping[str, Any], present: frozenset[str], run: dict[str, Any], consumed: set[str]) -> None:
    """LangSmith's own inputs and outputs, which win over every convention."""
    if not present.isdisjoint(_NATIVE_KEYS):
        _fill(attributes, run, consumed, NATIVE_INPUT_KEYS, NATIVE_OUTPUT_KEYS)


def generic(attributes: Mapping[str, Any], present: frozenset[str], run: dict[str, Any], consumed: set[str]) -> None:
    """The generic content keys, for the inputs and outputs no convention filled."""
    # Most spans (HTTP, database) have none: one set operation instead of looking for each.
    if not present.isdisjoint(_GENERIC_KEYS):
        _fill(attributes, run, consumed, INPUT_KEYS, OUTPUT_KEYS)


def _fill(
    attributes: Mapping[str, Any],
    run: dict[str, Any],
    consumed: set[str],
    input_keys: tuple[str, ...],
    output_keys: tuple[str, ...],
) -> None:
    for field, keys, wrap_key in (("inputs", input_keys, "input"), ("outputs", output_keys, "output")):
        if field not in run:
            value = _first(attributes, keys, wrap_key, consumed)
            if value is not None:
                run[field] = value
