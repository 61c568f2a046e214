"""Hiding or transforming inputs and outputs before they leave the process.

``LANGSMITH_HIDE_INPUTS`` / ``LANGSMITH_HIDE_OUTPUTS`` (as the LangSmith SDK reads them) replace
them with ``{}``; the ``process_inputs`` / ``process_outputs`` hooks transform them (return None to
drop them). A hook that raises hides the value: privacy fails closed. Values that an
instrumentation already redacted (OpenInference's ``__REDACTED__``) are left as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

Hook = Callable[[dict[str, Any]], "dict[str, Any] | None"]

# Span events whose attributes carry message content.
_CONTENT_EVENTS = ("gen_ai.", "llm.content.")


@dataclass(frozen=True)
class Redaction:
    hide_inputs: bool = False
    hide_outputs: bool = False
    process_inputs: Hook | None = None
    process_outputs: Hook | None = None

    @property
    def active(self) -> bool:
        return bool(self.hide_inputs or self.hide_outputs or self.process_inputs or self.process_outputs)

    def apply(self, run: dict[str, Any]) -> None:
        self._field(run, "inputs", self.hide_inputs, self.process_inputs)
        self._field(run, "outputs", self.hide_outputs, self.process_outputs)
        if (self.hide_inputs or self.hide_outputs) and run.get("events"):
            run["events"] = [
                {k: v for k, v in event.items() if k != "kwargs"}
                if str(event.get("name", "")).startswith(_CONTENT_EVENTS)
                else event
                for event in run["events"]
            ]

    @staticmethod
    def _field(run: dict[str, Any], field: str, hide: bool, hook: Hook | None) -> None:
        if field not in run:
            return
        if hide:
            run[field] = {}
            return
        if hook is None:
            return
        try:
            result = hook(run[field])
        except Exception:
            logger.exception("The %s hook failed on run %r; hiding its %s", field, run.get("name"), field)
            run[field] = {}
            return
        if result is None:
            del run[field]
        else:
            run[field] = result
