"""Run ``inputs`` and ``outputs`` from the generic content attributes every convention agrees on.

The first key present wins, in this order: LangSmith's own (``gen_ai.prompt`` / ``gen_ai.completion``,
holding the whole JSON inputs and outputs), OpenInference's ``input.value`` / ``output.value``, and
Traceloop's ``traceloop.entity.input`` / ``traceloop.entity.output``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .values import as_object

INPUT_KEYS = ("gen_ai.prompt", "input.value", "traceloop.entity.input")
OUTPUT_KEYS = ("gen_ai.completion", "output.value", "traceloop.entity.output")
# OpenInference says how to read input.value / output.value; once they are parsed it adds nothing.
_COMPANIONS = {"input.value": "input.mime_type", "output.value": "output.mime_type"}


def _first(
    attributes: Mapping[str, Any], keys: tuple[str, ...], wrap_key: str, consumed: set[str]
) -> dict[str, Any] | None:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            consumed.add(key)
            companion = _COMPANIONS.get(key)
            if companion is not None:
                consumed.add(companion)
            return as_object(value, key, wrap_key)
    return None


def inputs(attributes: Mapping[str, Any], consumed: set[str]) -> dict[str, Any] | None:
    return _first(attributes, INPUT_KEYS, "input", consumed)


def outputs(attributes: Mapping[str, Any], consumed: set[str]) -> dict[str, Any] | None:
    return _first(attributes, OUTPUT_KEYS, "output", consumed)
