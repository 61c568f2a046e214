"""Repeated problems: the first line at once, the rest summed up once per interval."""

import logging

from otel_langsmith._throttle import INTERVAL, Throttled


def lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_a_problem_that_costs_runs_is_summed_with_its_runs(caplog):
    now = [0.0]
    problem = Throttled(logging.getLogger("otel_langsmith.test"), logging.ERROR, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="otel_langsmith"):
        for runs in (3, 2, 5):
            problem.report(runs, "lost %d run(s)", runs)
        now[0] += INTERVAL
        problem.report(1, "lost %d run(s)", 1)
    assert lines(caplog) == ["lost 3 run(s)", "lost 1 run(s) (and 2 more time(s), 7 run(s), since the last report)"]


def test_a_problem_that_costs_no_run_is_summed_without_runs(caplog):
    now = [0.0]
    problem = Throttled(logging.getLogger("otel_langsmith.test"), logging.ERROR, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="otel_langsmith"):
        for index in range(40):
            problem.report(0, "file %d is unreadable", index)
        now[0] += INTERVAL
        problem.report(0, "file %d is unreadable", 40)
    assert lines(caplog) == [
        "file 0 is unreadable",
        "file 40 is unreadable (and 39 more time(s) since the last report)",
    ]
