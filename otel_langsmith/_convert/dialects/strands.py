"""Strands Agents (scope ``strands.telemetry.tracer``), beyond the GenAI keys and events it writes:
its time to first token is in milliseconds, where the key's other writers use seconds."""

from __future__ import annotations

from ..call import LLMCall
from ..dialect import Dialect, View
from ..values import real


def _call(view: View, call: LLMCall) -> None:
    value = real(view.attributes.get("gen_ai.server.time_to_first_token"))
    if call.first_token_ns is None and value is not None and value >= 0:
        call.first_token_ns = view.after(value / 1000)


DIALECT = Dialect(
    name="strands",
    scope="strands.telemetry.tracer",
    reads=frozenset(("gen_ai.server.time_to_first_token",)),
    call=_call,
)
