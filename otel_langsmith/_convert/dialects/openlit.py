"""OpenLIT's additions to the GenAI keys: the call's cost (``gen_ai.usage.cost``, in USD, from its
price list) and its total tokens under a metric's name (``gen_ai.client.token.usage``)."""

from __future__ import annotations

from ..call import LLMCall, UsageTable, usage
from ..dialect import Dialect, View
from ..values import real

_USAGE = UsageTable(
    (
        ("input_tokens", ("gen_ai.usage.input_tokens",)),
        ("output_tokens", ("gen_ai.usage.output_tokens",)),
        ("total_tokens", ("gen_ai.client.token.usage",)),
    )
)


def _call(view: View, call: LLMCall) -> None:
    cost = real(view.attributes.get("gen_ai.usage.cost"))
    if call.cost is None and cost is not None:
        view.consumed.add("gen_ai.usage.cost")
        call.cost = cost
    if call.usage is None and "gen_ai.client.token.usage" in view.present:
        call.usage = usage(view.attributes, view.present, _USAGE)


DIALECT = Dialect(name="openlit", reads=frozenset(("gen_ai.usage.cost", "gen_ai.client.token.usage")), call=_call)
