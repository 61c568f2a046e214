"""The pytest fixture of :mod:`otel_langsmith.testing`, registered as a pytest plugin.

Any test can take ``langsmith_receiver``: a started :class:`~otel_langsmith.testing.LangSmithReceiver`,
stopped after the test::

    def test_my_agent(langsmith_receiver):
        exporter = langsmith_receiver.exporter()
        ...
        assert not langsmith_receiver.rejected
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import LangSmithReceiver


@pytest.fixture
def langsmith_receiver() -> Iterator[LangSmithReceiver]:
    with LangSmithReceiver() as receiver:
        yield receiver
