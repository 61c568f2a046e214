"""Attacks on the kept layout of flattened keys (``messages.unflatten``), spans that
share one run id (twins, through both fronts), and the spool's counting of its directory at most
once per ``_RECOUNT``.

Everything runs on the real OpenTelemetry SDK and reaches the package's own receiver over loopback;
the spool is attacked on a real directory. The promises checked: the kept layout reads exactly what
the scan reads; no run is lost or sent over another, a child sits under its own twin, a child naming
the shared id sits under a run that exists, the receiver refuses nothing and finds no problem in
the tree, nothing raises into the application; a spool holds no more than its bound once it has
counted, evicts the oldest first, and a write never breaks on what another process did."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import FakeClock, ended_spans, front_with_clock, in_threads
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from test_hostile_context import processor_for

from otel_langsmith import LangSmithSpanExporter
from otel_langsmith import _ids as ids
from otel_langsmith import _propagation as propagation
from otel_langsmith import _spool as spool_module
from otel_langsmith._convert import keys, messages, values
from otel_langsmith._spool import Spool, encode_file
from otel_langsmith._wire import encode_run

SEC = 1_000_000  # microseconds


@pytest.fixture(autouse=True)
def fresh_throttles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(propagation, "_throttles", {})
    monkeypatch.setattr(values, "_reported", set())


# -- helpers ---------------------------------------------------------------------------------------------


def new_id() -> str:
    return str(uuid.uuid4())


def assert_under(child: dict, parent: dict) -> None:
    assert child.get("parent_run_id") == parent["id"], (child["name"], child.get("parent_run_id"), parent["id"])
    assert child["trace_id"] == parent["trace_id"]
    assert child["dotted_order"].startswith(parent["dotted_order"] + ".")
    assert child["dotted_order"].count(".") == parent["dotted_order"].count(".") + 1


def assert_accepted(receiver) -> None:
    assert receiver.rejected == [], [r.message for r in receiver.rejected]
    assert receiver.problems() == []
    assert receiver.duplicate_posts == 0, "a run id was posted twice: one run sent over another"


def by_name(receiver) -> dict[str, dict]:
    runs: dict[str, dict] = {}
    for run in receiver.runs.values():
        assert run["name"] not in runs, f"two runs named {run['name']!r}"
        runs[run["name"]] = run
    return runs


def through_processor(receiver, body: Callable, **options) -> dict[str, dict]:
    provider, processor = processor_for(receiver, **options)
    body(provider.get_tracer("attack"))
    assert processor.force_flush(10_000)
    provider.shutdown()
    return by_name(receiver)


def exporter_for(receiver, clock: FakeClock, **options) -> LangSmithSpanExporter:
    return front_with_clock(
        LangSmithSpanExporter, clock, endpoint=receiver.url, api_key=receiver.api_key, parent_wait=5.0, **options
    )


def through_exporter(receiver, body: Callable, **options) -> dict[str, dict]:
    clock = FakeClock()
    exporter = exporter_for(receiver, clock, **options)
    assert exporter.export(ended_spans(body)) is not False
    clock.advance(60)
    exporter.force_flush(10_000)
    exporter.shutdown()
    return by_name(receiver)


def exported_in_turn(receiver, batches: list[list], **options) -> dict[str, dict]:
    """Each list of spans in an export of its own, in turn; then the waits run out."""
    clock = FakeClock()
    exporter = exporter_for(receiver, clock, **options)
    for spans in batches:
        exporter.export(spans)
        clock.advance(0.1)
    clock.advance(60)
    exporter.force_flush(10_000)
    exporter.shutdown()
    return by_name(receiver)


FRONTS = {"processor": through_processor, "exporter": through_exporter}


# == 1. unflatten: the kept layout reads what the scan reads ==================================================

INDEX = st.sampled_from(
    ["0", "1", "01", "001", "2", "10", "10000", "010000", "10001", "99999", "123456", "x", "", "\u0661"]
)  # an Arabic-Indic one: isdecimal()
FIELD = st.sampled_from(["a", "b", "a.b", "message.role", "x\ny", "", "0", "0.a"])
FLAT = st.one_of(
    st.builds("p.{}.{}".format, INDEX, FIELD),
    st.builds("p.{}".format, INDEX),
    st.sampled_from(["p", "p.", "p..a", "q.0.a", "p.0", "pp.0.a", "p.0.a\n"]),
)


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FLAT, max_size=14, unique=True), st.data())
def test_hostile_flattened_keys_read_as_the_scan_span_after_span(names, data):
    """Attacks: leading zeros and duplicates (p.1.a / p.01.a), newlines, >5-digit indices, keys that
    are only prefixes of others; a second and third span with the same keys and other values."""
    for round_ in range(3):
        attributes = {name: data.draw(st.integers(), label=f"value {round_} {name!r}") for name in names}
        present = keys.present(tuple(attributes))
        kept: set[str] = set()
        scanned: set[str] = set()
        assert messages.unflatten(attributes, "p", present, kept) == messages.unflatten(attributes, "p", None, scanned)
        assert kept == scanned


def test_a_key_set_of_other_keys_of_the_same_length_is_not_trusted():
    """Attack: ``present`` is the key set of other keys, as many as the attributes have, whose
    layout for the prefix holds only keys the attributes also have. The promise: the fallback scan
    when the key set does not match."""
    present = keys.present(("p.0.a", "other"))
    messages.unflatten({"p.0.a": 1, "other": 2}, "p", present)  # the layout kept for those keys
    attributes = {"p.0.a": 1, "p.1.a": 2}
    consumed: set[str] = set()
    assert (
        messages.unflatten(attributes, "p", present, consumed)
        == messages.unflatten(attributes, "p")
        == [
            {"a": 1},
            {"a": 2},
        ]
    )
    assert consumed == {"p.0.a", "p.1.a"}


def test_a_key_set_of_the_same_keys_in_another_order_reads_duplicates_as_the_scan():
    """Attack: ``p.1.a`` and ``p.01.a`` both name index 1's field ``a``: the scan keeps the one the
    attributes hold last. A key set of the same keys in the other order must not answer for it."""
    present = keys.present(("p.01.a", "p.1.a"))
    attributes = {"p.1.a": "first", "p.01.a": "last"}
    assert messages.unflatten(attributes, "p") == [{"a": "last"}]
    assert messages.unflatten(attributes, "p", present) == [{"a": "last"}]


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FLAT, min_size=1, max_size=10, unique=True), st.lists(FLAT, min_size=1, max_size=10, unique=True))
def test_any_key_set_of_the_same_length_reads_as_the_scan(names, others):
    """Attack: ``present`` is a KeySet of different keys but the same length as the attributes."""
    size = min(len(names), len(others))
    names, others = names[:size], others[:size]
    attributes = {name: index for index, name in enumerate(names)}
    present = keys.present(tuple(others))
    if "p" not in present:
        return  # present says no key has the prefix: the documented shortcut, not the kept layout
    messages.unflatten(dict.fromkeys(others, 0), "p", present)  # the layout kept for the other keys
    kept: set[str] = set()
    scanned: set[str] = set()
    assert messages.unflatten(attributes, "p", present, kept) == messages.unflatten(attributes, "p", None, scanned)
    assert kept == scanned


@pytest.mark.parametrize("front", ["processor", "exporter"])
def test_retrievers_with_hostile_keys_keep_their_own_documents(langsmith_receiver, front):
    """Through both fronts: spans with one key set (leading zeros, duplicates, an index too large,
    a newline, a key that is only a prefix) each send their own documents."""

    def hostile(word: str) -> dict[str, object]:
        return {
            "openinference.span.kind": "RETRIEVER",
            "retrieval.documents.0.document.content": f"{word} zero",
            "retrieval.documents.01.document.content": f"{word} zero again",
            "retrieval.documents.2.document.content": f"{word} two",
            "retrieval.documents.00002.document.score": 0.25,
            "retrieval.documents.002.document.content": f"{word} two again",
            "retrieval.documents.999999.document.content": f"{word} too far",
            "retrieval.documents.3.document\n.content": f"{word} newline",
            "retrieval.documents.4": f"{word} prefix only",
            "retrieval.documents.5.document.content": f"{word} five",
        }

    words = ["alpha", "beta", "gamma"]

    def body(tracer) -> None:
        with tracer.start_as_current_span("root"):
            for word in words:
                with tracer.start_as_current_span(f"retrieve-{word}", attributes=hostile(word)):
                    pass

    runs = FRONTS[front](langsmith_receiver, body)
    for word in words:
        documents = runs[f"retrieve-{word}"]["outputs"]["documents"]
        # 0 and 01 are two indices; 2, 00002 and 002 one (the last key written wins); the rest is no document.
        assert [document["page_content"] for document in documents] == [
            f"{word} zero",
            f"{word} zero again",
            f"{word} two again",
            f"{word} five",
        ]
        assert documents[2]["metadata"] == {"score": 0.25}
    assert_accepted(langsmith_receiver)


# == 2. twins: spans that share one run id ================================================================


def twin_ids(runs: dict[str, dict], names: list[str], shared: str) -> None:
    """The twins are runs of their own: one keeps the shared id, the others name it."""
    found = [runs[name]["id"] for name in names]
    assert len(set(found)) == len(names), found
    assert found.count(shared) == 1, (found, shared)
    for name in names:
        if runs[name]["id"] != shared:
            assert runs[name]["extra"]["metadata"]["otel_langsmith_duplicate_run_id"] == shared


def test_a_twin_waiting_for_its_parent_when_the_other_is_placed_exporter(langsmith_receiver):
    """Attack: the first twin to end waits for its parent (exported later) when the second twin is
    placed and takes the id; both in separate export() calls, each with a child of its own."""
    shared = new_id()
    spans: dict[str, object] = {}

    def body(tracer) -> None:
        with tracer.start_as_current_span("parent") as parent:
            spans["parent-span"] = parent
            with tracer.start_as_current_span("twin-a", attributes={"langsmith.span.id": shared}):
                with tracer.start_as_current_span("leaf-a"):
                    pass
        with tracer.start_as_current_span("twin-b", attributes={"langsmith.span.id": shared}):
            with tracer.start_as_current_span("leaf-b"):
                pass

    ended = {span.name: span for span in ended_spans(body)}
    runs = exported_in_turn(
        langsmith_receiver,
        [[ended["leaf-a"], ended["twin-a"]], [ended["leaf-b"], ended["twin-b"]], [ended["parent"]]],
    )
    assert sorted(runs) == ["leaf-a", "leaf-b", "parent", "twin-a", "twin-b"]
    twin_ids(runs, ["twin-a", "twin-b"], shared)
    assert runs["twin-b"]["id"] == shared  # placed first
    assert_under(runs["twin-a"], runs["parent"])
    assert_under(runs["leaf-a"], runs["twin-a"])
    assert_under(runs["leaf-b"], runs["twin-b"])
    assert_accepted(langsmith_receiver)


def test_a_child_naming_the_shared_id_in_the_batch_of_a_waiting_twin_is_placed_exporter(langsmith_receiver):
    """Attack: in one export, twin A is placeable and takes the shared id; twin B (exported after A
    in the same batch) waits for its parent; span D names the shared id as its parent
    (langsmith.span.parent_id). D must sit under a run that exists, not be released as a root."""
    shared = new_id()

    def body(tracer) -> None:
        with tracer.start_as_current_span("twin-a", attributes={"langsmith.span.id": shared}):
            pass
        with tracer.start_as_current_span("parent"):
            with tracer.start_as_current_span("twin-b", attributes={"langsmith.span.id": shared}):
                pass
        with tracer.start_as_current_span("named-child", attributes={"langsmith.span.parent_id": shared}):
            pass

    ended = {span.name: span for span in ended_spans(body)}
    runs = exported_in_turn(
        langsmith_receiver,
        [[ended["twin-a"], ended["twin-b"], ended["named-child"]], [ended["parent"]]],
    )
    assert sorted(runs) == ["named-child", "parent", "twin-a", "twin-b"]
    twin_ids(runs, ["twin-a", "twin-b"], shared)
    assert_under(runs["twin-b"], runs["parent"])
    assert runs["named-child"].get("parent_run_id") == shared, runs["named-child"]["extra"]["metadata"]
    assert_under(runs["named-child"], runs["twin-a"])
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", list(FRONTS))
def test_three_twins_and_a_span_naming_their_id_as_parent(langsmith_receiver, front):
    """Attack: three twins (in turn, then one open while the others end), each with a child; a span
    that names the shared id via langsmith.span.parent_id, started after all three."""
    shared = new_id()

    def body(tracer) -> None:
        with tracer.start_as_current_span("root"):
            first = tracer.start_span("twin-0", attributes={"langsmith.span.id": shared})
            with trace.use_span(first):
                with tracer.start_as_current_span("leaf-0"):
                    pass
            for index in (1, 2):
                with tracer.start_as_current_span(f"twin-{index}", attributes={"langsmith.span.id": shared}):
                    with tracer.start_as_current_span(f"leaf-{index}"):
                        pass
            first.end()
            with tracer.start_as_current_span("named-child", attributes={"langsmith.span.parent_id": shared}):
                pass

    runs = FRONTS[front](langsmith_receiver, body)
    assert len(runs) == 8
    twin_ids(runs, ["twin-0", "twin-1", "twin-2"], shared)
    for index in range(3):
        assert_under(runs[f"twin-{index}"], runs["root"])
        assert_under(runs[f"leaf-{index}"], runs[f"twin-{index}"])
    assert runs["named-child"]["parent_run_id"] == shared
    assert_under(runs["named-child"], next(run for run in runs.values() if run["id"] == shared))
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", list(FRONTS))
def test_twins_with_an_explicit_dotted_order_are_two_runs(langsmith_receiver, front):
    """Attack: two spans with the same langsmith.span.id and the same explicit
    langsmith.span.dotted_order (a root run of their own)."""
    shared = new_id()
    order = ids.segment(time.time_ns() // 1000 - SEC, shared)

    def body(tracer) -> None:
        for name in ("twin-a", "twin-b"):
            attributes = {"langsmith.span.id": shared, "langsmith.span.dotted_order": order}
            with tracer.start_as_current_span(name, attributes=attributes):
                with tracer.start_as_current_span(f"{name}-leaf"):
                    pass

    runs = FRONTS[front](langsmith_receiver, body)
    assert sorted(runs) == ["twin-a", "twin-a-leaf", "twin-b", "twin-b-leaf"], sorted(runs)
    assert runs["twin-a"]["id"] != runs["twin-b"]["id"]
    assert_under(runs["twin-a-leaf"], runs["twin-a"])
    assert_under(runs["twin-b-leaf"], runs["twin-b"])
    assert_accepted(langsmith_receiver)


class _OneTraceId(RandomIdGenerator):
    def generate_trace_id(self) -> int:
        return 0x0123456789ABCDEF0123456789ABCDEF


def _llm(name: str) -> dict[str, object]:
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.system": "openai"}


@pytest.mark.parametrize("front", list(FRONTS))
def test_twins_under_the_span_filter(langsmith_receiver, front):
    """Attack, span_filter="llm": model-call twins sharing an id under a filtered-out root, then two
    roots of one trace id where the first root is filtered out and the second is a model call."""
    shared = new_id()

    def body(tracer) -> None:
        tracer.id_generator = _OneTraceId()
        with tracer.start_as_current_span("plain-root"):
            for name in ("twin-a", "twin-b"):
                with tracer.start_as_current_span(name, attributes={**_llm(name), "langsmith.span.id": shared}):
                    with tracer.start_as_current_span(f"{name}-call", attributes=_llm(name)):
                        pass
        with tracer.start_as_current_span("llm-root", attributes=_llm("llm-root")):
            with tracer.start_as_current_span("llm-root-call", attributes=_llm("x")):
                pass

    runs = FRONTS[front](langsmith_receiver, body, span_filter="llm")
    assert sorted(runs) == ["llm-root", "llm-root-call", "twin-a", "twin-a-call", "twin-b", "twin-b-call"]
    twin_ids(runs, ["twin-a", "twin-b"], shared)
    for name in ("twin-a", "twin-b"):
        assert_under(runs[f"{name}-call"], runs[name])
    assert_under(runs["llm-root-call"], runs["llm-root"])
    assert_accepted(langsmith_receiver)


def test_twins_open_at_once_on_two_threads_processor(langsmith_receiver):
    """Attack: the processor with twins open at once on two threads, each with children, many times."""
    shared = new_id()
    rounds = 20
    provider, processor = processor_for(langsmith_receiver)
    tracer = provider.get_tracer("attack")
    barrier = threading.Barrier(2)

    def work(thread: int) -> None:
        for index in range(rounds):
            barrier.wait()
            with tracer.start_as_current_span(f"twin-{thread}-{index}", attributes={"langsmith.span.id": shared}):
                barrier.wait()  # both twins open at once
                with tracer.start_as_current_span(f"leaf-{thread}-{index}"):
                    pass
                barrier.wait()

    assert in_threads(work, 2) == []
    assert processor.force_flush(10_000)
    provider.shutdown()
    runs = by_name(langsmith_receiver)
    assert len(runs) == 4 * rounds
    names = [f"twin-{thread}-{index}" for thread in range(2) for index in range(rounds)]
    twin_ids(runs, names, shared)
    for thread in range(2):
        for index in range(rounds):
            assert_under(runs[f"leaf-{thread}-{index}"], runs[f"twin-{thread}-{index}"])
    assert_accepted(langsmith_receiver)


def test_a_twin_posted_in_progress_and_a_twin_that_ends(langsmith_receiver):
    """Attack: live_after small: twin A is posted as in progress, twin B starts and ends, then A ends
    (a patch). Then twin C starts after A ended and ends. All three are runs of their own."""
    shared = new_id()
    clock = FakeClock()
    provider, processor = processor_for(langsmith_receiver, clock, live_after=0.5)
    tracer = provider.get_tracer("attack")
    with tracer.start_as_current_span("root"):
        first = tracer.start_span("twin-a", attributes={"langsmith.span.id": shared})
        clock.advance(1.0)
        processor._pipeline.tick()  # posts twin-a as in progress
        assert processor.force_flush(10_000)
        assert langsmith_receiver.wait_for_runs(1)
        with tracer.start_as_current_span("twin-b", attributes={"langsmith.span.id": shared}):
            with tracer.start_as_current_span("leaf-b"):
                pass
        assert processor.force_flush(10_000)
        with trace.use_span(first, end_on_exit=True):
            with tracer.start_as_current_span("leaf-a"):
                pass
        with tracer.start_as_current_span("twin-c", attributes={"langsmith.span.id": shared}):
            pass
    assert processor.force_flush(10_000)
    provider.shutdown()
    runs = by_name(langsmith_receiver)
    assert sorted(runs) == ["leaf-a", "leaf-b", "root", "twin-a", "twin-b", "twin-c"]
    twin_ids(runs, ["twin-a", "twin-b", "twin-c"], shared)
    assert runs["twin-a"]["id"] == shared
    assert langsmith_receiver.operations(shared) == ["post", "patch"]
    assert runs["twin-a"].get("end_time")
    assert_under(runs["leaf-a"], runs["twin-a"])
    assert_under(runs["leaf-b"], runs["twin-b"])
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("order", ["a-first", "b-first"])
def test_twins_exported_twice_keep_their_ids(langsmith_receiver, order):
    """Attack: each twin handed to the exporter twice, in separate export() calls, interleaved."""
    shared = new_id()

    def body(tracer) -> None:
        tracer.id_generator = _OneTraceId()
        for name in ("twin-a", "twin-b"):
            with tracer.start_as_current_span(name, attributes={"langsmith.span.id": shared}):
                with tracer.start_as_current_span(f"{name}-leaf"):
                    pass
        for name in ("root-a", "root-b"):  # two roots of one trace id
            with tracer.start_as_current_span(name):
                pass

    ended = {span.name: span for span in ended_spans(body)}
    a = [ended["twin-a-leaf"], ended["twin-a"], ended["root-a"]]
    b = [ended["twin-b-leaf"], ended["twin-b"], ended["root-b"]]
    first, second = (a, b) if order == "a-first" else (b, a)
    clock = FakeClock()
    exporter = exporter_for(langsmith_receiver, clock)
    seen: dict[str, list[str]] = {}
    for spans in (first, second, first, second):
        langsmith_receiver.clear()
        exporter.export(spans)
        assert exporter.force_flush(10_000)
        for run in langsmith_receiver.runs.values():
            seen.setdefault(run["name"], []).append(run["id"])
    exporter.shutdown()
    assert all(len(set(found)) == 1 and len(found) == 2 for found in seen.values()), seen
    assert seen["twin-a"][0] != seen["twin-b"][0]
    assert seen["root-a"][0] != seen["root-b"][0]
    keeper = "twin-a" if order == "a-first" else "twin-b"
    assert seen[keeper][0] == shared


def test_a_span_exported_again_keeps_its_id_when_half_its_placement_is_forgotten(langsmith_receiver):
    """Attack: a root with an explicit langsmith.span.id is exported, other runs are placed until
    the exporter's bounded memory of placements forgets the oldest entry (the span's own id, but not
    yet its run id: they are remembered one after the other), then the span is exported again. A
    span handed to the exporter twice keeps its id."""
    shared = new_id()

    def body(tracer) -> None:
        with tracer.start_as_current_span("explicit", attributes={"langsmith.span.id": shared}):
            pass
        with tracer.start_as_current_span("plain"):
            pass

    ended = {span.name: span for span in ended_spans(body)}
    clock = FakeClock()
    exporter = exporter_for(langsmith_receiver, clock)
    registry = exporter._pipeline._runs.assembler._placed
    exporter.export([ended["explicit"]])
    one_root = registry.bytes  # what one root's two entries cost
    registry._max_bytes = 2 * one_root - 1  # as if 16 MiB of placements had gone by since
    exporter.export([ended["plain"]])
    span_id = ended["explicit"].get_span_context().span_id
    assert (span_id in registry) != (int(shared.replace("-", ""), 16) in registry)  # half forgotten
    exporter.export([ended["explicit"]])
    assert exporter.force_flush(10_000)
    exporter.shutdown()
    posted = [run_ids for request in langsmith_receiver.requests for run_ids in request.run_ids]
    explicit_ids = [run["id"] for run in langsmith_receiver.runs.values() if run["name"] == "explicit"]
    assert explicit_ids == [shared], explicit_ids
    assert posted.count(shared) == 2, posted


# == 3. the spool counts its directory at most once per _RECOUNT ==========================================


def _batch(pad: int = 900, runs: int = 1) -> list:
    return [encode_run({"id": new_id(), "trace_id": "t", "inputs": {"pad": "p" * pad}}) for _ in range(runs)]


def held_bytes(directory: Path) -> int:
    """Bytes of the batches a directory holds (regular files only: a planted directory holds none)."""
    return sum(path.lstat().st_size for path in directory.glob("*.batch") if path.is_file() and not path.is_symlink())


def test_two_spools_on_one_directory_racing_from_threads(tmp_path, monkeypatch):
    """Attack: two Spool instances on one directory, written from four threads at once. Nothing
    raises; once each has counted again, the directory is back within its bound, the newest kept."""
    monkeypatch.setattr(spool_module, "_RECOUNT", 0.05, raising=False)
    batch = _batch()
    size = len(encode_file(batch))
    limit = 10 * size
    spools = [Spool(tmp_path, max_bytes=limit) for _ in range(2)]

    def work(index: int) -> None:
        for _ in range(60):
            spools[index % 2].write(batch)

    assert in_threads(work, 4) == []
    time.sleep(0.1)
    written_last = []
    for spool in spools:
        spool.write(batch)
        written_last.append(max(p.name for p in tmp_path.glob("*.batch")))
    assert held_bytes(tmp_path) <= limit
    names = sorted(p.name for p in tmp_path.glob("*.batch"))
    assert names[-1] == written_last[-1]  # the newest survives: the oldest went first


def test_one_spool_written_from_threads_at_once_keeps_its_bound(tmp_path):
    """Attack: one Spool instance written by several threads at once (the store is thread-safe):
    one process never holds more than max_bytes."""
    batch = _batch()
    size = len(encode_file(batch))
    limit = 5 * size
    spool = Spool(tmp_path, max_bytes=limit)
    over: list[int] = []

    def work(index: int) -> None:
        for _ in range(80):
            spool.write(batch)
            held = len(list(tmp_path.glob("*.batch")))
            if held * size > limit:
                over.append(held)

    assert in_threads(work, 4) == []
    assert held_bytes(tmp_path) <= limit
    assert over == [], f"the directory held up to {max(over)} batches of {limit // size} allowed"


def test_a_file_removed_between_count_and_eviction_never_breaks_a_write(tmp_path, monkeypatch):
    """Attack: another process takes (removes) each file just as this one is about to evict it,
    and plants a directory named like a batch. The write goes on; the bound holds."""
    batch = _batch()
    size = len(encode_file(batch))
    spool = Spool(tmp_path, max_bytes=3 * size)
    for _ in range(3):
        spool.write(batch)
    count_runs = Spool._count_runs

    def taken_meanwhile(path: Path) -> int:
        found = count_runs(path)
        path.unlink(missing_ok=True)  # another process took it
        (tmp_path / path.name).mkdir()  # and something else took its name
        return found

    monkeypatch.setattr(Spool, "_count_runs", staticmethod(taken_meanwhile))
    monkeypatch.setattr(spool_module, "_RECOUNT", 0.0, raising=False)
    dropped = spool.write(batch)
    assert dropped == 0  # none was evicted by this process: another took them
    assert held_bytes(tmp_path) <= 3 * size


def test_files_planted_and_removed_between_counts(tmp_path, monkeypatch):
    """Attack: between counts another process plants old batches (and a FIFO and a symlink named
    like one) and removes some of them again. Writes never break; after the next count the bound
    holds, the oldest (the planted ones) went before any of this process's, and every batch this
    process evicted is counted."""
    monkeypatch.setattr(spool_module, "_RECOUNT", 0.05, raising=False)
    batch = _batch()
    size = len(encode_file(batch))
    limit = 4 * size
    spool = Spool(tmp_path, max_bytes=limit)
    spool.write(batch)
    data = encode_file(batch)
    planted = {f"{index:020d}-1-planted0.batch" for index in range(6)}
    for name in planted:
        (tmp_path / name).write_bytes(data)
    fifo, link = tmp_path / f"{7:020d}-1-fifo0000.batch", tmp_path / f"{8:020d}-1-link0000.batch"
    os.mkfifo(fifo)
    link.symlink_to("/nonexistent")
    dropped = spool.write(batch)  # the planted ones may not be seen yet: nothing breaks
    time.sleep(0.1)
    removed = set()
    for name in sorted(planted)[1::2]:  # another process takes some of them
        if (tmp_path / name).exists():
            (tmp_path / name).unlink()
            removed.add(name)
    mine = {p.name for p in tmp_path.glob("*.batch") if p.name not in planted and p.is_file() and not p.is_symlink()}
    assert len(mine) == 2
    dropped += spool.write(batch)  # counted again: the bound is back
    assert held_bytes(tmp_path) <= limit
    names = {p.name for p in tmp_path.glob("*.batch")}
    assert mine <= names  # the planted (older) went before any of this process's
    assert dropped == len(planted - removed - names)  # each batch evicted here is counted, once
    assert not fifo.exists() and not link.is_symlink()  # set aside, never opened


def test_max_bytes_smaller_than_one_batch(tmp_path):
    """Attack: spool_max_bytes smaller than one batch. Each write evicts all older batches; the
    spool never holds more than the newest; the runs evicted are counted."""
    batch = _batch(runs=3)
    spool = Spool(tmp_path, max_bytes=10)
    assert spool.write(batch) == 0
    for _ in range(5):
        assert spool.write(batch) == 3
        assert len(list(tmp_path.glob("*.batch"))) == 1
