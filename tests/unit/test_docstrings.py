"""The examples in the package's docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import otel_langsmith

MODULES = sorted(info.name for info in pkgutil.walk_packages(otel_langsmith.__path__, prefix="otel_langsmith."))


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_in_a_module_hold(name):
    results = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert results.failed == 0


def test_examples_are_found():
    finder = doctest.DocTestFinder()
    found = sum(len(test.examples) for name in MODULES for test in finder.find(importlib.import_module(name)))
    assert found >= 15
