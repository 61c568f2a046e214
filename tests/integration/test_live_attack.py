"""Attacks on placing off the application's thread (LiveSpans.settle, the pipeline's outbox): the real
OpenTelemetry SDK, the package's own receiver on loopback, each promise tried at its worst moment."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest
from helpers import FakeClock, front_with_clock, in_threads
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from otel_langsmith import LangSmithPropagator, LangSmithSpanProcessor, _live
from otel_langsmith import _ids as ids
from otel_langsmith._convert import values

fork_warning = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


def run_id_of(span) -> str:
    context = span.get_span_context()
    return ids.root_run_id(context.trace_id) if span.parent is None else ids.span_run_id(context.span_id)


def live_processor(receiver, *, shutdown_on_exit: bool = True, **options):
    provider = TracerProvider(shutdown_on_exit=shutdown_on_exit)
    processor = LangSmithSpanProcessor(endpoint=receiver.url, api_key=receiver.api_key, **options)
    provider.add_span_processor(processor)
    return provider, processor


def clocked_processor(receiver, clock, *, shutdown_on_exit: bool = True, **options):
    """The worker never wakes by itself (flush_interval of an hour): whoever needs a place settles."""
    processor = front_with_clock(
        LangSmithSpanProcessor, clock, endpoint=receiver.url, api_key=receiver.api_key, flush_interval=3600, **options
    )
    provider = TracerProvider(shutdown_on_exit=shutdown_on_exit)
    provider.add_span_processor(processor)
    return provider, processor


def assert_accepted(receiver) -> None:
    """The receiver refused no request and found no problem in any run."""
    assert receiver.rejected == [] and receiver.problems() == []


def assert_under(child: dict, parent: dict) -> None:
    assert child.get("parent_run_id") == parent["id"], (child["name"], child.get("parent_run_id"), parent["id"])
    assert child["trace_id"] == parent["trace_id"]
    assert child["dotted_order"].startswith(parent["dotted_order"] + ".")
    assert child["dotted_order"].count(".") == parent["dotted_order"].count(".") + 1


# -- 1. the span filter: reparenting to the nearest kept ancestor, long gone ---------------------------


def test_filtered_chain_reparents_late_children_to_a_kept_ancestor_converted_long_before(langsmith_receiver):
    def keep(span) -> bool:
        if span.name.startswith("boom"):
            raise RuntimeError("filter fails on this one")  # a filter that raises keeps the span
        return not span.name.startswith("skip")

    provider, processor = live_processor(langsmith_receiver, flush_interval=0.02, span_filter=keep)
    tracer = provider.get_tracer("filter")
    root = tracer.start_span("root")
    skip_a = tracer.start_span("skip-a", context=trace.set_span_in_context(root))
    skip_b = tracer.start_span("skip-b", context=trace.set_span_in_context(skip_a))
    early = tracer.start_span("early", context=trace.set_span_in_context(skip_b))
    early.end()
    root.end()  # the kept ancestor ends while its filtered descendants are still open...
    assert processor.force_flush()
    root_id = run_id_of(root)
    assert root_id in langsmith_receiver.runs  # ...and is converted and sent
    time.sleep(0.1)  # several worker ticks
    skip_a.end()  # a filtered ancestor ends and is converted (as nothing) too
    assert processor.force_flush()
    results: list[BaseException] = []

    def late() -> None:  # on another thread, long after: children of the open skip-b and the ended skip-a
        try:
            with trace.use_span(skip_b, end_on_exit=False):
                with tracer.start_as_current_span("late-b"):
                    with tracer.start_as_current_span("skip-c"):
                        with tracer.start_as_current_span("boom-under-skip-c"):
                            pass
            with tracer.start_as_current_span("late-a", context=trace.set_span_in_context(skip_a)):
                pass
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=late)
    thread.start()
    thread.join()
    assert results == []
    skip_b.end()
    assert processor.force_flush()
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert sorted(runs) == ["boom-under-skip-c", "early", "late-a", "late-b", "root"]
    for name in ("early", "late-a", "late-b"):
        assert_under(runs[name], runs["root"])
    assert_under(runs["boom-under-skip-c"], runs["late-b"])
    stats = processor.stats()
    assert stats.spans_filtered == 3 and stats.spans_received == 8 and stats.runs_dropped == 0
    assert_accepted(langsmith_receiver)
    provider.shutdown()


# -- 2. a child started after its parent ended and was converted, on another thread -------------------


def test_a_child_started_after_its_parent_was_converted_sits_under_it(langsmith_receiver):
    provider, processor = live_processor(langsmith_receiver, flush_interval=0.02)
    tracer = provider.get_tracer("late-child")
    with tracer.start_as_current_span("root") as root:
        with tracer.start_as_current_span("parent") as parent:
            pass
    assert processor.force_flush()
    time.sleep(0.1)  # the worker has ticked past both ends
    assert {run["name"] for run in langsmith_receiver.runs.values()} == {"root", "parent"}

    def child(index: int) -> None:
        with tracer.start_as_current_span(f"child-{index}", context=trace.set_span_in_context(parent)):
            with tracer.start_as_current_span(f"grandchild-{index}"):
                pass

    assert in_threads(child, 4) == []
    assert processor.force_flush()
    runs = langsmith_receiver.runs
    by_name = {run["name"]: run for run in runs.values()}
    assert len(runs) == 2 + 8
    assert_under(by_name["parent"], by_name["root"])
    for index in range(4):
        assert_under(by_name[f"child-{index}"], by_name["parent"])
        assert_under(by_name[f"grandchild-{index}"], by_name[f"child-{index}"])
        assert by_name[f"child-{index}"]["id"] == run_id_of(tracer_span_named(runs, f"child-{index}"))
    assert by_name["root"]["id"] == run_id_of(root)
    assert_accepted(langsmith_receiver)
    provider.shutdown()


class _Named:
    """The fields run_id_of reads, from a received run's OTel ids."""

    def __init__(self, run: dict) -> None:
        metadata = run["extra"]["metadata"]
        self._span_id = int(metadata["OTEL_SPAN_ID"], 16)
        self._trace_id = int(metadata["OTEL_TRACE_ID"], 16)
        self.parent = object()

    def get_span_context(self):
        return trace.SpanContext(self._trace_id, self._span_id, is_remote=False)


def tracer_span_named(runs: dict, name: str) -> _Named:
    (run,) = [run for run in runs.values() if run["name"] == name]
    return _Named(run)


# -- 3. shutdown while other threads start and end spans -------------------------------------------------


def test_shutdown_while_threads_trace_loses_nothing_that_ended_before_it(langsmith_receiver):
    provider, processor = live_processor(langsmith_receiver, flush_interval=0.01, live_after=0.05)
    tracer = provider.get_tracer("shutdown")
    stop = threading.Event()
    failures: list[BaseException] = []
    ended: list[list[tuple[float, str]]] = [[] for _ in range(6)]
    propagator = LangSmithPropagator()

    def work(worker: int) -> None:
        log = ended[worker]
        index = 0
        try:
            while not stop.is_set():
                with tracer.start_as_current_span(f"root-{worker}-{index}") as root:
                    with tracer.start_as_current_span("step") as step:
                        propagator.inject({})
                        with tracer.start_as_current_span("leaf") as leaf:
                            pass
                        log.append((time.monotonic(), run_id_of(leaf)))
                    log.append((time.monotonic(), run_id_of(step)))
                log.append((time.monotonic(), run_id_of(root)))
                index += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    began = time.monotonic()
    processor.shutdown(timeout_millis=5_000)
    time.sleep(0.05)  # the threads keep tracing into a processor that is shut down
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    before = {run_id for log in ended for at, run_id in log if at < began}
    assert len(before) > 100
    runs = langsmith_receiver.runs
    missing = before - set(runs)
    stats = processor.stats()
    assert len(missing) <= stats.runs_dropped, (len(missing), stats)
    assert all("end_time" in runs[run_id] for run_id in before & set(runs))
    assert_accepted(langsmith_receiver)
    provider.shutdown()


# -- 4. LangSmith attributes set after the span started -------------------------------------------------


def test_a_project_named_after_start_does_not_depend_on_when_the_worker_woke(langsmith_receiver):
    # The LangSmith SDK's own OpenTelemetry exporter starts a span, then sets
    # langsmith.trace.session_name on it. Two identical traces; the only difference is whether the
    # worker woke (it does every flush_interval) between the start and the attribute.
    provider, processor = live_processor(langsmith_receiver, flush_interval=0.02)
    tracer = provider.get_tracer("late-project")
    with tracer.start_as_current_span("quick-root") as quick:
        quick.set_attribute("langsmith.trace.session_name", "sdk-project")
        with tracer.start_as_current_span("quick-child"):
            pass
    with tracer.start_as_current_span("slow-root") as slow:
        time.sleep(0.2)  # some work before the project is named: the worker ticks meanwhile
        slow.set_attribute("langsmith.trace.session_name", "sdk-project")
        with tracer.start_as_current_span("slow-child"):
            pass
    assert processor.force_flush()
    projects = {run["name"]: run.get("session_name") for run in langsmith_receiver.runs.values()}
    assert projects["quick-root"] == projects["slow-root"], projects
    assert projects["quick-child"] == projects["slow-child"], projects
    assert langsmith_receiver.rejected == []
    provider.shutdown()


def test_a_run_id_named_after_start_does_not_depend_on_when_the_worker_woke(langsmith_receiver):
    clock = FakeClock()
    provider, processor = clocked_processor(langsmith_receiver, clock)
    tracer = provider.get_tracer("late-id")
    explicit = {"a": "00000000-0000-0000-0000-0000000000aa", "b": "00000000-0000-0000-0000-0000000000bb"}
    with tracer.start_as_current_span("a") as a:
        a.set_attribute("langsmith.span.id", explicit["a"])
        with tracer.start_as_current_span("a-child"):
            pass
    with tracer.start_as_current_span("b") as b:
        processor._pipeline.tick()  # what the worker does when it wakes, here between start and attribute
        b.set_attribute("langsmith.span.id", explicit["b"])
        with tracer.start_as_current_span("b-child"):
            pass
    assert processor.force_flush()
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert_under(runs["a-child"], runs["a"])
    assert_under(runs["b-child"], runs["b"])
    # The same program, the same attributes: either both explicit ids win, or neither does.
    took = {name: runs[name]["id"] == explicit[name] for name in ("a", "b")}
    assert took["a"] == took["b"], {name: runs[name]["id"] for name in ("a", "b")}
    assert_accepted(langsmith_receiver)
    provider.shutdown()


def test_a_parent_id_set_after_start_naming_the_real_parent_keeps_the_tree(langsmith_receiver):
    clock = FakeClock()
    provider, processor = clocked_processor(langsmith_receiver, clock)
    tracer = provider.get_tracer("late-parent-id")
    with tracer.start_as_current_span("root") as root:
        with tracer.start_as_current_span("step") as step:
            # Names the run it already sits under, as LangSmith writes it.
            step.set_attribute("langsmith.span.parent_id", run_id_of(root))
            with tracer.start_as_current_span("leaf") as leaf:
                leaf.set_attribute("langsmith.span.parent_id", run_id_of(step))
    assert processor.force_flush()
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert sorted(runs) == ["leaf", "root", "step"]
    assert_under(runs["step"], runs["root"])
    assert_under(runs["leaf"], runs["step"])
    assert_accepted(langsmith_receiver)
    provider.shutdown()


def test_a_parent_id_given_at_start_finds_its_parent_open_or_ended_root_or_explicit(langsmith_receiver):
    # As the LangSmith SDK's OpenTelemetry mode writes them: the parent's run id among the attributes
    # a span starts with. The parent is open then (the usual case), a trace's root (whose run id is
    # not its span's), or a run with an id of its own; or it has ended already.
    clock = FakeClock()
    provider, processor = clocked_processor(langsmith_receiver, clock)
    tracer = provider.get_tracer("parent-id-at-start")
    explicit = "00000000-0000-0000-0000-0000000000ee"
    with tracer.start_as_current_span("root") as root:
        with tracer.start_as_current_span("under-root", attributes={"langsmith.span.parent_id": run_id_of(root)}):
            pass
        with tracer.start_as_current_span("step") as step:
            with tracer.start_as_current_span("under-step", attributes={"langsmith.span.parent_id": run_id_of(step)}):
                pass
        with tracer.start_as_current_span("named", attributes={"langsmith.span.id": explicit}):
            with tracer.start_as_current_span("under-named", attributes={"langsmith.span.parent_id": explicit}):
                pass
        # Its parent ended before it starts: placed from the ended run's placement.
        with tracer.start_as_current_span("late", attributes={"langsmith.span.parent_id": run_id_of(step)}):
            pass
    assert processor.force_flush()
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert runs["named"]["id"] == explicit
    assert_under(runs["under-root"], runs["root"])
    assert_under(runs["under-step"], runs["step"])
    assert_under(runs["under-named"], runs["named"])
    assert_under(runs["late"], runs["step"])
    assert_accepted(langsmith_receiver)
    provider.shutdown()


def test_a_span_posted_in_progress_while_a_flush_converts_its_end_is_posted_before_its_patch(langsmith_receiver):
    # The worker picks a long-open span to post in progress, marking it posted; meanwhile the span
    # ends and a flush on another thread converts its end. Its end is a patch then: the post in
    # progress must reach LangSmith before it, or the run is left in progress after it ended.
    clock = FakeClock()
    provider, processor = clocked_processor(langsmith_receiver, clock, live_after=1.0)
    live = processor._pipeline._runs.live
    picked, go = threading.Event(), threading.Event()
    real_due = live.due

    def slow_due(now, live_after):
        found = real_due(now, live_after)
        if found and threading.current_thread().name == "ticking":
            picked.set()
            go.wait(5)
        return found

    live.due = slow_due
    span = provider.get_tracer("race").start_span("long")
    clock.advance(2.0)
    ticking = threading.Thread(target=processor._pipeline.tick, name="ticking")
    ticking.start()
    assert picked.wait(5)
    span.end()
    flushing = threading.Thread(target=processor.force_flush, name="flushing")
    flushing.start()
    flushing.join(0.3)  # with the flush racing the post, it is done by now
    go.set()
    ticking.join(5)
    flushing.join(5)
    assert processor.force_flush()
    run_id = ids.root_run_id(span.get_span_context().trace_id)
    assert langsmith_receiver.operations(run_id) == ["post", "patch"]
    assert "end_time" in langsmith_receiver.runs[run_id]
    assert_accepted(langsmith_receiver)
    provider.shutdown()


# -- 5. fork in the middle of a burst ----------------------------------------------------------------------


@fork_warning
def test_fork_in_the_middle_of_a_burst_leaves_the_child_a_working_processor(langsmith_receiver):
    provider, processor = live_processor(langsmith_receiver, flush_interval=0.01)
    tracer = provider.get_tracer("fork-burst")
    stop = threading.Event()
    failures: list[BaseException] = []
    propagator = LangSmithPropagator()

    def burst(worker: int) -> None:
        index = 0
        try:
            while not stop.is_set():
                with tracer.start_as_current_span(f"parent-{worker}-{index}"):
                    with tracer.start_as_current_span("step"):
                        propagator.inject({})
                index += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=burst, args=(worker,)) for worker in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.15)
    with tracer.start_as_current_span("open-across-fork"):
        pid = os.fork()
        if pid == 0:  # the child: only this thread; trace, propagate, flush, leave
            code = 1
            try:
                carrier: dict[str, str] = {}
                with tracer.start_as_current_span("in-child"):
                    with tracer.start_as_current_span("child-step"):
                        propagator.inject(carrier)
                if "langsmith-trace" not in carrier:
                    code = 3
                elif not processor.force_flush(5_000):
                    code = 2
                else:
                    code = 0
            finally:
                os._exit(code)
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert os.waitstatus_to_exitcode(status) == 0
    assert processor.force_flush()
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert_under(runs["child-step"], runs["in-child"])
    assert "parent_run_id" not in runs["in-child"]  # its OTel parent is the parent process's
    assert_accepted(langsmith_receiver)
    provider.shutdown()


# -- 6. long-open spans posted in progress, children started from other threads -------------------------


def test_long_open_spans_posted_live_with_children_from_other_threads(langsmith_receiver):
    provider, processor = live_processor(langsmith_receiver, flush_interval=0.01, live_after=0.05)
    tracer = provider.get_tracer("live-threads")
    with tracer.start_as_current_span("root") as root:
        time.sleep(0.15)  # posted in progress
        root_id = run_id_of(root)
        assert langsmith_receiver.wait_for_runs(1, timeout=2) and "end_time" not in langsmith_receiver.runs[root_id]
        context = trace.set_span_in_context(root)

        def work(worker: int) -> None:
            with tracer.start_as_current_span(f"child-{worker}", context=context):
                time.sleep(0.12)  # posted in progress too
                for index in range(20):
                    with tracer.start_as_current_span(f"leaf-{worker}-{index}"):
                        pass

        failures = in_threads(work, 4)
    assert failures == []
    assert processor.force_flush()
    runs = langsmith_receiver.runs
    by_name = {run["name"]: run for run in runs.values()}
    assert len(runs) == 1 + 4 + 80
    assert langsmith_receiver.operations(root_id) == ["post", "patch"]
    for worker in range(4):
        child = by_name[f"child-{worker}"]
        assert_under(child, by_name["root"])
        assert langsmith_receiver.operations(child["id"]) == ["post", "patch"]
        for index in range(20):
            assert_under(by_name[f"leaf-{worker}-{index}"], child)
    assert all("end_time" in run for run in runs.values())
    assert langsmith_receiver.duplicate_posts == 0
    assert_accepted(langsmith_receiver)
    provider.shutdown()


# -- 7. the propagator for a span that has just started, while the worker is busy ----------------------


def test_inject_for_a_just_started_span_while_the_worker_converts_a_flood(langsmith_receiver):
    provider, processor = live_processor(langsmith_receiver, flush_interval=0.01)
    tracer = provider.get_tracer("inject")
    propagator = LangSmithPropagator()
    headers: list[tuple[str, dict[str, str]]] = []
    flood_done = threading.Event()

    def flood() -> None:  # keeps the worker busy converting and placing
        with tracer.start_as_current_span("flood-root"):
            for index in range(3000):
                with tracer.start_as_current_span("flood", attributes={"input.value": "x" * 200, "i": index}):
                    pass
        flood_done.set()

    flooder = threading.Thread(target=flood)
    flooder.start()
    while not flood_done.is_set():
        with tracer.start_as_current_span("request") as request:
            carrier: dict[str, str] = {}
            propagator.inject(carrier)
            headers.append((run_id_of(request), carrier))
    flooder.join()
    assert processor.force_flush(10_000)
    runs = langsmith_receiver.runs
    assert len(headers) > 5
    for run_id, carrier in headers:
        assert carrier["langsmith-trace"] == runs[run_id]["dotted_order"]
    assert sum(1 for run in runs.values() if run["name"] == "flood") == 3000
    assert_accepted(langsmith_receiver)
    provider.shutdown()


# -- 8. a warning said while placing, on the thread that placed ---------------------------------------------


def test_a_warning_while_placing_does_not_deadlock_an_application_that_traces_its_log_shipping(
    langsmith_receiver, monkeypatch
):
    # A log handler that ships records over HTTP from the logging thread, the HTTP client
    # instrumented (a span, and the configured propagators inject its headers). Placing a span
    # whose langsmith.span.id is not a UUID logs a warning; the propagator places what waits.
    monkeypatch.setattr(values, "_reported", set())
    provider, processor = clocked_processor(langsmith_receiver, FakeClock(), shutdown_on_exit=False)
    tracer = provider.get_tracer("log-shipping")
    propagator = LangSmithPropagator()
    local = threading.local()

    class ShippingHandler(logging.Handler):
        def createLock(self) -> None:
            # No handler lock: a thread stuck in emit must not stall logging.shutdown at exit.
            self.lock = None

        def emit(self, record: logging.LogRecord) -> None:
            if getattr(local, "shipping", False):
                return
            local.shipping = True
            try:
                with tracer.start_as_current_span("POST /logs"):
                    propagator.inject({})
            finally:
                local.shipping = False

    handler = ShippingHandler(level=logging.WARNING)
    package_logger = logging.getLogger("otel_langsmith")
    package_logger.addHandler(handler)
    done = threading.Event()
    failures: list[BaseException] = []

    def request() -> None:
        try:
            with tracer.start_as_current_span("handler") as span:
                span.set_attribute("langsmith.span.id", "not-a-uuid")
                propagator.inject({})  # an outgoing call: its headers
            done.set()
        except BaseException as exc:
            failures.append(exc)
            done.set()

    try:
        thread = threading.Thread(target=request, daemon=True)
        thread.start()
        finished = done.wait(3)
        assert finished, "the application's thread deadlocked: it waits for the placing lock it holds"
        assert failures == []
        processor.force_flush()
        assert processor.force_flush()  # the second: what the first flush's own logging started
        assert {run["name"] for run in langsmith_receiver.runs.values()} == {"handler", "POST /logs"}
        assert langsmith_receiver.rejected == []
    finally:
        package_logger.removeHandler(handler)
    provider.shutdown()


def test_a_span_started_by_a_warning_while_its_parent_is_placed_sits_under_that_parent(langsmith_receiver, monkeypatch):
    # The same log shipper; this time the bad langsmith.span.id is given at start, so the warning
    # is said while "handler" itself is being placed, inside its `with` block: the shipper's span
    # is a child of "handler" in OpenTelemetry, and must be one in LangSmith too, never a root.
    monkeypatch.setattr(values, "_reported", set())
    provider, processor = clocked_processor(langsmith_receiver, FakeClock(), shutdown_on_exit=False)
    tracer = provider.get_tracer("log-shipping")
    propagator = LangSmithPropagator()
    local = threading.local()
    shipped: list[tuple[object, dict[str, str]]] = []

    class ShippingHandler(logging.Handler):
        def createLock(self) -> None:
            self.lock = None

        def emit(self, record: logging.LogRecord) -> None:
            if getattr(local, "shipping", False):
                return
            local.shipping = True
            try:
                with tracer.start_as_current_span("POST /logs") as span:
                    carrier: dict[str, str] = {}
                    propagator.inject(carrier)
                    shipped.append((span, carrier))
            finally:
                local.shipping = False

    handler = ShippingHandler(level=logging.WARNING)
    package_logger = logging.getLogger("otel_langsmith")
    package_logger.addHandler(handler)
    done = threading.Event()
    failures: list[BaseException] = []

    def request() -> None:
        try:
            with tracer.start_as_current_span("handler", attributes={"langsmith.span.id": "not-a-uuid"}):
                propagator.inject({})
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    try:
        threading.Thread(target=request, daemon=True).start()
        assert done.wait(3), "the application's thread deadlocked: it waits for the placing lock it holds"
        assert failures == []
        processor.force_flush()
        assert processor.force_flush()
        runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
        assert sorted(runs) == ["POST /logs", "handler"]
        (span, carrier), *_ = shipped
        assert span.parent is not None  # OpenTelemetry's view: a child of "handler"
        assert_under(runs["POST /logs"], runs["handler"])
        # Started while its parent was being placed, it is placed after it, by the next call: the
        # propagator, asked in between, sends no LangSmith header rather than a wrong one.
        assert "langsmith-trace" not in carrier
        assert_accepted(langsmith_receiver)
    finally:
        package_logger.removeHandler(handler)
    provider.shutdown()


# -- spans open past open_span_ttl ----------------------------------------------------------------------


def test_a_span_forgotten_after_its_ttl_ends_as_a_patch_where_it_was_posted(langsmith_receiver):
    # An agent or session span open past the TTL (an hour by default) was posted again as a root
    # when it ended: billed twice, and its children, started before or after, left its tree.
    clock = FakeClock()
    provider, processor = clocked_processor(langsmith_receiver, clock, live_after=10, open_span_ttl=100)
    tracer = provider.get_tracer("ttl")
    root = tracer.start_span("root")
    early = tracer.start_span("early", context=trace.set_span_in_context(root))
    clock.advance(11)
    processor._pipeline.tick()  # both posted in progress
    assert processor.force_flush()
    clock.advance(100)
    processor._pipeline.tick()  # both forgotten
    assert processor._pipeline._runs.live.evicted == 2
    late = tracer.start_span("late", context=trace.set_span_in_context(root))
    late.end()
    early.end()
    root.end()
    assert processor.force_flush()
    provider.shutdown()
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    operations = {name: langsmith_receiver.operations(run["id"]) for name, run in runs.items()}
    assert operations == {"root": ["post", "patch"], "early": ["post", "patch"], "late": ["post"]}
    assert langsmith_receiver.duplicate_posts == 0
    assert_under(runs["early"], runs["root"])
    assert_under(runs["late"], runs["root"])
    assert "end_time" in runs["root"] and "end_time" in runs["early"]
    assert_accepted(langsmith_receiver)


def test_spans_forgotten_after_their_ttl_are_kept_within_their_bound(langsmith_receiver, monkeypatch):
    # Spans that never end (a leak) must not hold memory for ever: past the bound the oldest go,
    # and the end of one gone is sent as its own root, as a span never seen is.
    monkeypatch.setattr(_live, "_MAX_FORGOTTEN", 3)
    clock = FakeClock()
    provider, processor = clocked_processor(langsmith_receiver, clock, live_after=3600, open_span_ttl=100)
    tracer = provider.get_tracer("ttl")
    spans = [tracer.start_span(f"leak-{index}") for index in range(5)]
    processor._pipeline.tick()
    clock.advance(101)
    processor._pipeline.tick()
    live = processor._pipeline._runs.live
    assert live.evicted == 5 and list(live._forgotten) == [span.context.span_id for span in spans[2:]]
    for span in spans:
        span.end()
    assert processor.force_flush()
    provider.shutdown()
    names = sorted(run["name"] for run in langsmith_receiver.runs.values())
    assert names == [f"leak-{index}" for index in range(5)]
    assert langsmith_receiver.duplicate_posts == 0
    assert_accepted(langsmith_receiver)
