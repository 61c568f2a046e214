"""Hiding or transforming inputs and outputs before they leave the process.

``LANGSMITH_HIDE_INPUTS`` / ``LANGSMITH_HIDE_OUTPUTS`` (as the LangSmith SDK reads them) replace
them with ``{}``; the ``process_inputs`` / ``process_outputs`` hooks transform them (return None to
drop them). A hook that raises hides the value: privacy fails closed. What a hook returns that is
not a mapping is sent under ``input`` / ``output``: LangSmith takes only objects there. Values
that an instrumentation already redacted (OpenInference's ``__REDACTED__``) are left as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._throttle import Throttled

logger = logging.getLogger(__name__)

# A hook that fails, fails on every run: a line now and then, not one a run.
_failed = Throttled(logger, logging.ERROR)
_not_a_dict = Throttled(logger, logging.WARNING)


def reset_after_fork() -> None:
    """Fresh locks for the child's throttled lines (a thread may have held one at the fork)."""
    _failed.reset()
    _not_a_dict.reset()


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
        except Exception as exc:
            _failed.report(1, "The %s hook failed on run %r (%r); hiding its %s", field, run.get("name"), exc, field)
            logger.debug("The %s hook failed", field, exc_info=True)
            run[field] = {}
            return
        if result is None:
            del run[field]
        elif isinstance(result, Mapping):
            run[field] = result if type(result) is dict else dict(result)
        else:
            # LangSmith takes only an object: what the hook made is kept, as the SDK wraps a value.
            _not_a_dict.report(
                1, "The %s hook returned a %s, not a dict: sent under %r", field, type(result).__name__, field[:-1]
            )
            run[field] = {field[:-1]: result}
