"""The ``langsmith_receiver`` pytest fixture, registered as a pytest plugin.

Importing this module imports nothing heavy: pytest loads it in every session of an environment
where the package is installed, used or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .testing import LangSmithReceiver


@pytest.fixture
def langsmith_receiver() -> Iterator[LangSmithReceiver]:
    """A started :class:`otel_langsmith.testing.LangSmithReceiver` on loopback, stopped after the test.

    It checks what it receives as LangSmith does (the API key, the multipart layout, required
    fields, dotted orders) and keeps the runs for the test to read::

        def test_my_agent(langsmith_receiver):
            provider = TracerProvider()
            provider.add_span_processor(BatchSpanProcessor(langsmith_receiver.exporter()))
            run_my_agent(provider.get_tracer("test"))
            provider.shutdown()
            assert langsmith_receiver.rejected == []
            assert [run["name"] for run in langsmith_receiver.roots()] == ["my-agent"]
    """
    from .testing import LangSmithReceiver  # noqa: PLC0415 - only when a test asks for it

    with LangSmithReceiver() as receiver:
        yield receiver
