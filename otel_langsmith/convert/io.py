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
# OpenInference says how to read input.value / output.value; once they are parsed it adds nothing.
_COMPANIONS = {"input.value": "input.mime_type", "output.value": "output.mime_type"}


def first(
    attributes: Mapping[str, Any], present: frozenset[str], keys: tuple[str, ...], wrap_key: str, consumed: set[str]
) -> dict[str, Any] | None:
    """The first of ``keys`` present, as an object; the key (and its companion) join ``consumed``.

    ``present`` is :func:`keys.present` of the attributes (most spans have none of these keys).
    """
    if present.isdisjoint(keys):
        return None
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            consumed.add(key)
            companion = _COMPANIONS.get(key)
            if companion is not None:
                consumed.add(companion)
            return as_object(value, key, wrap_key)
    return None
