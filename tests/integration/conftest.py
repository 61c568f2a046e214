"""Everything here is an integration test: child processes, forks, real instrumentations, real time."""

from __future__ import annotations

import pytest

from otel_langsmith.testing import LangSmithReceiver


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def receiver():
    """One receiver for a module's tests, whose runs they tell apart by id."""
    with LangSmithReceiver() as started:
        yield started


@pytest.fixture(scope="module")
def exporter(receiver):
    exporter = receiver.exporter()
    yield exporter
    exporter.shutdown()
