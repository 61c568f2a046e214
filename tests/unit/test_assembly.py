"""The assembler on hand-made pending runs: placement, waiting, release."""

import logging

from opentelemetry.sdk.resources import Resource

from otel_langsmith import _ids as ids
from otel_langsmith._assembly import Assembler
from otel_langsmith._convert import PendingRun
from otel_langsmith._placement import Placed
from otel_langsmith.testing import check_run

TRACE = 0xABC
RESOURCE = Resource.create({"service.name": "svc"})


def pending(span_id, parent_span_id=None, *, start=1_000_000, root=False, size=0, project_explicit=False, **run):
    run_id = ids.root_run_id(TRACE) if root else ids.span_run_id(span_id)
    metadata = {}
    return PendingRun(
        span_id=span_id,
        otel_trace_id=TRACE,
        run_id=run_id,
        key=TRACE if root else span_id,
        parent=None if root else parent_span_id,
        start_us=start,
        end_us=start + 10,
        run={
            "name": f"s{span_id}",
            "run_type": "chain",
            "session_name": "p",
            "extra": {"metadata": metadata},
            "inputs": {"pad": "x" * size},
            **run,
        },
        metadata=metadata,
        resource=RESOURCE,
        project_explicit=project_explicit,
    )


def assembler(**overrides):
    options = {"max_wait": 10.0, "max_spans": 100, "max_bytes": 1 << 20}
    options.update(overrides)
    return Assembler(**options)


def names(runs):
    return [r["name"] for r in runs]


def test_children_in_the_same_batch_as_their_parent_are_placed_parents_first():
    a = assembler()
    ready = a.add([pending(3, 2, start=3), pending(2, 1, start=2), pending(1, root=True, start=1)], now=0)
    assert names(ready) == ["s1", "s2", "s3"]
    for run in ready:
        check_run("post", run)
    root, child, grandchild = ready
    assert grandchild["dotted_order"].startswith(child["dotted_order"] + ".")
    assert child["parent_run_id"] == root["id"] == root["trace_id"] == grandchild["trace_id"]
    assert grandchild["parent_run_id"] == child["id"]
    assert a.waiting == 0


def test_a_placement_reads_its_ids_from_any_depth_of_dotted_order():
    run_ids = [ids.format_uuid(n << 64 | n) for n in range(1, 5)]
    for depth in range(1, 5):
        order = ".".join(ids.segment(1_700_000_000_000_000 + n, run_ids[n]) for n in range(depth))
        placed = Placed.from_dotted_order(order, 0, session_name=None, session_id=None, resource=None)
        assert (placed.trace_id, placed.run_id) == (run_ids[0], run_ids[depth - 1])
        assert placed.parent_run_id == (run_ids[depth - 2] if depth > 1 else None)


def test_a_child_waits_for_a_parent_in_a_later_batch_and_leaves_with_it():
    a = assembler()
    assert a.add([pending(3, 2), pending(4, 2)], now=0) == []
    assert a.waiting == 2 and a.waiting_bytes > 0
    ready = a.add([pending(2, 1)], now=1)
    assert ready == []  # the parent itself waits for the root
    assert a.waiting == 3
    ready = a.add([pending(1, root=True)], now=2)
    assert sorted(names(ready)) == ["s1", "s2", "s3", "s4"]
    assert names(ready)[:2] == ["s1", "s2"]
    assert a.waiting == 0 and a.waiting_bytes == 0


def test_a_late_child_finds_its_placed_parent():
    a = assembler()
    a.add([pending(1, root=True)], now=0)
    (late,) = a.add([pending(2, 1)], now=5)
    assert late["parent_run_id"] == ids.root_run_id(TRACE)


def test_a_child_that_starts_before_its_parent_is_clamped():
    a = assembler()
    (child,) = [
        r for r in a.add([pending(2, 1, start=500), pending(1, root=True, start=1_000)], now=0) if r["name"] == "s2"
    ]
    assert child["start_time"] == ids.iso_time(1_000)
    assert child["end_time"] == ids.iso_time(1_000)  # its end (510) cannot precede its start
    check_run("post", child)


def test_the_wait_limit_releases_the_top_most_waiting_ancestor_as_a_root(caplog):
    a = assembler(max_wait=10.0)
    a.add([pending(3, 2)], now=0)
    a.add([pending(2, 1)], now=5)  # its own parent (1) never comes
    assert a.expire(now=9.9) == []
    with caplog.at_level(logging.WARNING, logger="otel_langsmith._assembly"):
        ready = a.expire(now=10.0)
    assert names(ready) == ["s2", "s3"]
    top, below = ready
    assert "parent_run_id" not in top and top["trace_id"] == top["id"]
    assert top["extra"]["metadata"]["OTEL_PARENT_SPAN_ID"] == f"{1:016x}"
    assert top["extra"]["metadata"]["OTEL_PARENT_MISSING"] == "timeout"
    assert below["parent_run_id"] == top["id"]
    assert a.released_as_root == {"timeout": 1}
    assert "not seen (timeout)" in caplog.text and "1 waiting descendant" in caplog.text
    for run in ready:
        check_run("post", run)


def test_a_full_buffer_releases_the_oldest_first():
    a = assembler(max_spans=2)
    assert a.add([pending(10, 1), pending(20, 2)], now=0) == []
    ready = a.add([pending(30, 3)], now=1)
    assert names(ready) == ["s10"]
    assert ready[0]["extra"]["metadata"]["OTEL_PARENT_MISSING"] == "buffer_full"
    assert a.waiting == 2


def test_the_byte_bound_counts_too():
    a = assembler(max_bytes=5_000)
    assert a.add([pending(10, 1, size=3_000)], now=0) == []
    ready = a.add([pending(20, 2, size=3_000)], now=0)
    assert names(ready) == ["s10"] and a.waiting_bytes < 5_000


def test_drain_releases_everything_with_its_reason():
    a = assembler()
    a.add([pending(10, 1), pending(11, 10), pending(20, 2)], now=0)
    ready = a.drain("shutdown")
    assert sorted(names(ready)) == ["s10", "s11", "s20"]
    assert a.released_as_root == {"shutdown": 2}
    assert a.waiting == 0 and a.waiting_bytes == 0


def test_children_inherit_the_project_unless_they_name_one():
    a = assembler()
    root = pending(1, root=True, session_name="root-project", project_explicit=True)
    inherits = pending(2, 1)
    own = pending(3, 1, session_name="mine", project_explicit=True)
    ready = {r["name"]: r for r in a.add([root, inherits, own], now=0)}
    assert ready["s2"]["session_name"] == "root-project"
    assert ready["s3"]["session_name"] == "mine"


def test_the_resource_is_stated_once_per_trace_and_where_it_changes():
    a = assembler()
    other = pending(3, 2)
    other.resource = Resource.create({"service.name": "other"})
    ready = {r["name"]: r for r in a.add([pending(1, root=True), pending(2, 1), other], now=0)}
    assert ready["s1"]["extra"]["metadata"]["service.name"] == "svc"
    assert "service.name" not in ready["s2"]["extra"]["metadata"]
    assert ready["s3"]["extra"]["metadata"]["service.name"] == "other"


def test_a_cycle_of_explicit_parents_is_broken_not_looped():
    a = assembler()
    x, y = pending(1, 2), pending(2, 1)
    assert a.add([x, y], now=0) == []
    ready = a.expire(now=100)
    assert sorted(names(ready)) == ["s1", "s2"]
    for run in ready:
        check_run("post", run)


def test_a_span_exported_again_keeps_its_run_id_and_another_root_of_the_trace_takes_its_own():
    a = assembler()
    first = a.add([pending(1, root=True)], now=0)
    again = a.add([pending(1, root=True)], now=0)  # the same span handed over twice
    other = a.add([pending(9, root=True, start=5)], now=0)  # another root of the same trace id
    assert first[0]["id"] == again[0]["id"] == ids.root_run_id(TRACE)
    assert "otel_langsmith_duplicate_run_id" not in again[0]["extra"]["metadata"]
    assert other[0]["id"] == ids.span_run_id(9) == other[0]["trace_id"]
    assert other[0]["extra"]["metadata"]["otel_langsmith_duplicate_run_id"] == ids.root_run_id(TRACE)
    # A child naming the other root's span comes under it, under its own id.
    child = a.add([pending(10, 9, start=6)], now=0)
    assert child[0]["parent_run_id"] == ids.span_run_id(9)
