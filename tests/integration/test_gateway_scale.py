"""The gateway at scale: replicas behind a trace-id router, a router that splits traces, a sender that
outruns LangSmith, and SIGTERM with runs still held.

Real processes and real HTTP on loopback throughout: gateways as children (``GatewayProcess``), the
local LangSmith receiver in this process, spans recorded by the real OpenTelemetry SDK and sent by
the real OTLP/HTTP exporter (or as raw OTLP protobuf bodies where the test needs to see each answer).
Expected run ids and ``dotted_order`` are computed here from the spans, independently of the package.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from helpers import GatewayProcess, closed_port_url, rss
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_langsmith._spool import decode_file
from otel_langsmith.testing import Fault, LangSmithReceiver

KEY = "lsv2-scale-key"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
logger = logging.getLogger(__name__)
SPANS_IN = re.compile(r"gateway: (\d+) span\(s\) in, (\d+) rejected; (\d+) run\(s\) sent")


# -- spans ---------------------------------------------------------------------------------------


def record(body: Callable[..., None], service: str = "scale") -> list[ReadableSpan]:
    """The spans ``body(tracer)`` ended, recorded by the real SDK (in end order: children first)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    body(provider.get_tracer("gateway-scale"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def chat_attributes(rng: random.Random, step: int) -> dict[str, object]:
    """A model call as GenAI instrumentations describe it."""
    question = [{"role": "user", "parts": [{"type": "text", "content": f"question {step}?"}]}]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": f"answer {step}"}], "finish_reason": "stop"}]
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": rng.choice(["gpt-4o", "gpt-4o-mini"]),
        "gen_ai.usage.input_tokens": rng.randint(5, 500),
        "gen_ai.usage.output_tokens": rng.randint(1, 200),
        "gen_ai.input.messages": json.dumps(question),
        "gen_ai.output.messages": json.dumps(answer),
    }


def varied_traces(count: int, seed: int) -> Callable[..., None]:
    """``count`` traces of depth 1 to 4 (each depth in turn), fan-out 1 to 5, about a third of the
    non-root spans GenAI model calls; at most 30 spans a trace."""
    rng = random.Random(seed)

    def node(tracer, name: str, level: int, depth: int, budget: list[int]) -> None:
        llm = level > 0 and rng.random() < 0.35
        with tracer.start_as_current_span(
            f"chat {name}" if llm else name,
            kind=SpanKind.CLIENT if llm else SpanKind.INTERNAL,
            attributes=chat_attributes(rng, level) if llm else {"step": name},
        ):
            if level + 1 >= depth:
                return
            for child in range(rng.randint(1, 5)):
                if budget[0] <= 0:
                    return
                budget[0] -= 1
                node(tracer, f"{name}.{child}", level + 1, depth, budget)

    def body(tracer) -> None:
        for index in range(count):
            node(tracer, f"trace-{index}", 0, 1 + index % 4, [29])

    return body


@dataclass(frozen=True)
class Expected:
    """A span's run as LangSmith must get it when its whole trace is sent together."""

    run_id: str
    parent_run_id: str | None
    trace_id: str
    dotted_order: str
    start_us: int
    depth: int


def segment(start_us: int, run_id: str) -> str:
    seconds, micros = divmod(start_us, 1_000_000)
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds)) + f"{micros:06d}Z{run_id}"


def run_id_of(span: ReadableSpan) -> str:
    """LangSmith's rule: a root's run id is its trace id; any other's is 8 zero bytes then its span id."""
    if span.parent is None:
        return str(uuid.UUID(int=span.context.trace_id))
    return str(uuid.UUID(int=span.context.span_id))


def expected_runs(spans: Sequence[ReadableSpan]) -> dict[int, Expected]:
    """By span id: the run each span must become, its place computed from the spans alone."""
    by_id = {span.context.span_id: span for span in spans}
    found: dict[int, Expected] = {}

    def place(span: ReadableSpan) -> Expected:
        known = found.get(span.context.span_id)
        if known is not None:
            return known
        run_id, start = run_id_of(span), span.start_time // 1_000
        if span.parent is None:
            made = Expected(run_id, None, run_id, segment(start, run_id), start, 1)
        else:
            parent = place(by_id[span.parent.span_id])
            start = max(start, parent.start_us)  # a child never starts before its parent
            dotted = f"{parent.dotted_order}.{segment(start, run_id)}"
            made = Expected(run_id, parent.run_id, parent.trace_id, dotted, start, parent.depth + 1)
        found[span.context.span_id] = made
        return made

    for span in spans:
        place(span)
    return found


def in_batches(items: Sequence, count: int) -> list[list]:
    size = -(-len(items) // count)
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def metadata(run: dict) -> dict:
    return (run.get("extra") or {}).get("metadata") or {}


def spans_in(logged: str) -> int:
    """Spans the gateway says it took, from its count lines."""
    return sum(int(match.group(1)) for match in SPANS_IN.finditer(logged))


def gateway_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {"LANGSMITH_ENDPOINT": endpoint, "LANGSMITH_API_KEY": KEY, "LANGSMITH_PROJECT": "scale", **extra}


def wait_until_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(f"{url}/readyz", timeout=5)
        if answer.status_code == 200:
            return
        assert time.monotonic() < deadline, f"{url}/readyz never answered 200: {answer.text}"
        time.sleep(0.1)


# -- 1. scale-out by trace id --------------------------------------------------------------------


def trace_route(span: ReadableSpan) -> int:
    """Which of two replicas the OpenTelemetry Collector's ``loadbalancing`` exporter with
    ``routing_key: traceID`` picks: it hashes the trace id bytes onto a consistent-hash ring of its
    backends. Any stable hash of the trace id alone has the property under test (all spans of a
    trace go to one replica); CRC-32 modulo 2 models it."""
    return zlib.crc32(span.context.trace_id.to_bytes(16, "big")) % 2


@pytest.mark.timeout(120)
def test_two_replicas_behind_a_trace_id_router_deliver_every_trace_whole():
    spans = record(varied_traces(40, seed=1))
    expected = expected_runs(spans)
    assert {
        max(e.depth for e in expected.values() if e.trace_id == t) for t in {e.trace_id for e in expected.values()}
    } == {1, 2, 3, 4}
    routed: list[list[ReadableSpan]] = [[], []]
    for span in spans:
        routed[trace_route(span)].append(span)
    assert all(routed), "both replicas must get traces"
    shuffler = random.Random(7)
    with LangSmithReceiver(api_key=KEY) as receiver:
        environment = gateway_env(receiver.url)
        with (
            GatewayProcess("--report-every", "1", env=environment) as first,
            GatewayProcess("--report-every", "1", env=environment) as second,
        ):
            gateways = [first, second]
            for replica, share in enumerate(routed):
                exporter = OTLPSpanExporter(endpoint=f"{gateways[replica].url}/v1/traces")
                shuffled = list(share)
                shuffler.shuffle(shuffled)  # children before parents, and a trace across requests
                for batch in in_batches(shuffled, 4):
                    assert exporter.export(batch) is SpanExportResult.SUCCESS
                exporter.shutdown()
            arrived = receiver.wait_for_runs(len(spans), timeout=30)
            runs = receiver.runs
            stopped = [gateway.stop() for gateway in gateways]
        assert arrived, f"{len(runs)} of {len(spans)} runs arrived"
        assert receiver.rejected == []
        assert receiver.problems() == []
        assert receiver.duplicate_posts == 0
    for status, logged in stopped:
        assert status == 0, logged
    logger.info("trace-id routing: %d spans of 40 traces, %d and %d per replica", len(spans), *map(len, routed))
    assert [spans_in(logged) for _, logged in stopped] == [len(share) for share in routed]
    assert sorted(runs) == sorted(e.run_id for e in expected.values())
    for want in expected.values():
        run = runs[want.run_id]
        assert run.get("parent_run_id") == want.parent_run_id, run["name"]
        assert run["trace_id"] == want.trace_id, run["name"]
        assert run["dotted_order"] == want.dotted_order, run["name"]
        assert "OTEL_PARENT_MISSING" not in metadata(run), run["name"]
    assert any(run["run_type"] == "llm" for run in runs.values())


# -- 2. a router that splits traces --------------------------------------------------------------


def span_route(span: ReadableSpan) -> int:
    """A router blind to traces (a plain load balancer spreading requests, or spans, over replicas),
    modelled by the span id: a trace's spans scatter over both."""
    return span.context.span_id % 2


@pytest.mark.timeout(120)
def test_a_router_that_splits_traces_loses_no_span_and_flags_each_run_whose_parent_went_elsewhere():
    parent_wait = 1.0
    spans = record(varied_traces(24, seed=2))
    expected = expected_runs(spans)
    by_id = {span.context.span_id: span for span in spans}
    # Spans whose parent went to the other replica: each must become a root flagged as such.
    orphans = {
        span.context.span_id
        for span in spans
        if span.parent is not None and span_route(by_id[span.parent.span_id]) != span_route(span)
    }
    routed: list[list[ReadableSpan]] = [[], []]
    for span in spans:
        routed[span_route(span)].append(span)
    assert all(routed) and orphans
    shuffler = random.Random(11)
    with LangSmithReceiver(api_key=KEY) as receiver:
        environment = gateway_env(receiver.url, OTEL_EXPORTER_LANGSMITH_PARENT_WAIT=str(parent_wait))
        with (
            GatewayProcess("--report-every", "1", env=environment) as first,
            GatewayProcess("--report-every", "1", env=environment) as second,
        ):
            gateways = [first, second]
            exporters = [OTLPSpanExporter(endpoint=f"{gateway.url}/v1/traces") for gateway in gateways]
            plan = []
            for replica, share in enumerate(routed):
                shuffled = list(share)
                shuffler.shuffle(shuffled)
                plan += [(replica, batch) for batch in in_batches(shuffled, 3)]
            shuffler.shuffle(plan)
            started = time.monotonic()
            results = [exporters[replica].export(batch) for replica, batch in plan]
            sending = time.monotonic() - started
            for exporter in exporters:
                exporter.shutdown()
            arrived = receiver.wait_for_runs(len(spans), timeout=30)
            time.sleep(parent_wait + 0.5)  # anything sent twice would have come by now
            runs = receiver.runs
            operations = {run_id: receiver.operations(run_id) for run_id in runs}
            stopped = [gateway.stop() for gateway in gateways]
        assert arrived, f"{len(runs)} of {len(spans)} runs arrived"
        assert receiver.rejected == []
        assert receiver.problems() == []
        assert receiver.duplicate_posts == 0
    # A parent on the same replica that came in a later request than its child must still be in
    # time: otherwise the child would be flagged too, and the count below would be off for that reason.
    logger.info(
        "split traces: %d spans (%d and %d) in %d requests sent in %.2fs; %d whose parent went elsewhere, %d flagged",
        len(spans),
        len(routed[0]),
        len(routed[1]),
        len(plan),
        sending,
        len(orphans),
        sum("OTEL_PARENT_MISSING" in metadata(run) for run in runs.values()),
    )
    assert sending < parent_wait, f"sending took {sending:.2f}s, longer than the parent wait"
    assert results == [SpanExportResult.SUCCESS] * len(plan)
    for status, logged in stopped:
        assert status == 0, logged
    assert [spans_in(logged) for _, logged in stopped] == [len(share) for share in routed]
    assert sorted(runs) == sorted(e.run_id for e in expected.values())
    assert all(ops.count("post") == 1 for ops in operations.values()), operations
    flagged = {run_id for run_id, run in runs.items() if "OTEL_PARENT_MISSING" in metadata(run)}
    assert len(flagged) == len(orphans)
    assert flagged == {expected[span_id].run_id for span_id in orphans}
    for span_id in orphans:
        run = runs[expected[span_id].run_id]
        # A root of its own: the parent it lacks is named, the trace it starts is its own.
        assert run.get("parent_run_id") is None and run["trace_id"] == run["id"]
        assert metadata(run)["OTEL_PARENT_SPAN_ID"] == f"{by_id[span_id].parent.span_id:016x}"
    for span_id, want in expected.items():
        if span_id not in orphans:  # its parent was on its replica: it hangs below it
            assert runs[want.run_id].get("parent_run_id") == want.parent_run_id


# -- 3. backpressure -----------------------------------------------------------------------------


class RssSampler:
    """A process's resident memory (VmRSS), sampled every 50 ms on a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        return rss(self._pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.now())
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sizable_traces(count: int, seed: int) -> Callable[..., None]:
    """``count`` traces of a root and two children, each span with a 2 to 4 KB attribute."""
    rng = random.Random(seed)

    def payload() -> str:
        return rng.randbytes(rng.randint(1_000, 2_000)).hex()

    def body(tracer) -> None:
        for index in range(count):
            with tracer.start_as_current_span(f"request-{index}", attributes={"payload": payload()}):
                for child in range(2):
                    with tracer.start_as_current_span(f"step-{index}-{child}", attributes={"payload": payload()}):
                        pass

    return body


@dataclass
class Sent:
    refusals: int = 0
    retry_afters: set[str] = field(default_factory=set)
    #: What /readyz answered right after each refusal.
    readiness: list[int] = field(default_factory=list)


def send_honouring_backpressure(url: str, bodies: Iterable[bytes]) -> Sent:
    """Each body posted until it is taken; a 503 or 429 is waited out (its ``Retry-After``, at most
    0.5 s) and the same body sent again, as OTLP/HTTP senders do."""
    sent = Sent()
    with requests.Session() as session:
        for body in bodies:
            while True:
                answer = session.post(f"{url}/v1/traces", data=body, headers=PROTOBUF, timeout=30)
                if answer.status_code == 200:
                    break
                assert answer.status_code in (429, 503), (answer.status_code, answer.text)
                sent.refusals += 1
                retry_after = answer.headers.get("Retry-After")
                if retry_after is not None:
                    sent.retry_afters.add(retry_after)
                sent.readiness.append(requests.get(f"{url}/readyz", timeout=10).status_code)
                time.sleep(min(float(retry_after or 0.5), 0.5))
    return sent


@pytest.mark.timeout(120)
def test_a_sender_that_outruns_langsmith_is_held_back_with_503_and_memory_stays_bounded():
    high_water = 200_000
    warm_up = record(sizable_traces(17, seed=30))
    spans = record(sizable_traces(2_000, seed=3))
    assert len(spans) == 6_000
    # Requests of 20 spans (about 60 KB each): several fit under the mark, and then the sender,
    # which posts back to back, outruns a LangSmith that refuses for a while and then is slow.
    bodies = [encode_spans(batch).SerializeToString() for batch in in_batches(spans, 300)]
    expected = {e.run_id for e in expected_runs(spans).values()}
    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess(
            "--report-every", "1", "--high-water-bytes", str(high_water), env=gateway_env(receiver.url)
        ) as gateway:
            assert gateway.process is not None
            sampler = RssSampler(gateway.process.pid)
            wait_until_ready(gateway.url)
            # The first request makes the tenant's pipeline, its threads and its compression
            # context, and imports what converting spans needs: the baseline is taken after it.
            answer = requests.post(
                f"{gateway.url}/v1/traces", data=encode_spans(warm_up).SerializeToString(), headers=PROTOBUF
            )
            assert answer.status_code == 200
            assert receiver.wait_for_runs(len(warm_up), timeout=20)
            time.sleep(0.3)
            baseline = sampler.now()
            # LangSmith refuses two batches (the gateway backs off about 1 s, then 2 s), then
            # answers the next ten slowly.
            receiver.plan(*[Fault(status=503, retry_after="1")] * 2, *[Fault(status=None, delay=0.2)] * 10)
            started = time.monotonic()
            with sampler:
                sent = send_honouring_backpressure(gateway.url, bodies)
                sending = time.monotonic() - started
                arrived = receiver.wait_for_runs(len(warm_up) + len(spans), timeout=60)
            delivering = time.monotonic() - started
            wait_until_ready(gateway.url)
            status, logged = gateway.stop()
        runs = receiver.runs
        # Only the two planned refusals: nothing the gateway sent was refused for what it was.
        assert [(r.status, r.message) for r in receiver.rejected] == [(503, "planned fault")] * 2
        assert receiver.problems() == []
    peak = max(sampler.samples)
    summary = (
        f"backpressure: {len(spans)} spans in {len(bodies)} requests ({sum(map(len, bodies)) / 1e6:.1f} MB), "
        f"{sent.refusals} refused (Retry-After {sorted(sent.retry_afters)}), sent in {sending:.1f}s, "
        f"delivered in {delivering:.1f}s; RSS baseline {baseline / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB "
        f"(+{(peak - baseline) / 1e6:.1f} MB over {len(sampler.samples)} samples)"
    )
    logger.info("%s", summary)
    assert arrived, f"{len(runs) - len(warm_up)} of {len(spans)} runs arrived"
    assert expected <= runs.keys() and len(runs) == len(warm_up) + len(spans)
    assert sent.refusals > 0 and sent.retry_afters, "the gateway never refused the sender"
    assert 503 in sent.readiness, "/readyz never said 503 while the gateway refused"
    assert status == 0, logged
    refused_logged = sum(int(count) for count in re.findall(r"(\d+) request\(s\) refused", logged))
    assert refused_logged == sent.refusals, logged
    # The bound: the baseline, the mark, and what the mark does not count, each bounded:
    # - in flight, one sender: one request body being read and decoded (60 KB; its spans and runs
    #   well under 1 MB) and one batch on its way to LangSmith (at most 100 runs, about 350 KB, with
    #   its multipart and compressed copies, and orjson's buffers, reserved at several times each
    #   payload's length until a run is queued behind 100 others): 2 MB at most;
    # - the placements the assembler remembers for children that come after their parent (at most
    #   16 MB a tenant; about 350 bytes a run by its own estimate, 0.5 to 1 KB measured): 3 to 6 MB
    #   for these 6,000 runs;
    # - memory freed but kept by the allocators (pymalloc, and glibc's per-thread arenas, one per
    #   connection thread): measured 2 to 4 MB.
    # That is 7 to 12 MB over the mark; 15 MB leaves room for a loaded machine. Measured with
    # backpressure: +6 to +10 MB; without it (--high-water-bytes 1e9, all 18.6 MB held): +31 MB.
    bound = baseline + high_water + 15_000_000
    assert peak < bound, f"peak RSS over {bound / 1e6:.1f} MB: {summary}"


# -- 4. SIGTERM with runs held -------------------------------------------------------------------


def spooled_run_ids(directory: Path) -> list[str]:
    """The run ids the spool files in ``directory`` hold, read with the spool's own format."""
    return [run.run_id for path in sorted(directory.glob("*.batch")) for run in decode_file(path.read_bytes())]


@pytest.mark.timeout(120)
def test_sigterm_while_langsmith_is_down_spools_what_is_held_and_a_restarted_gateway_delivers_it(tmp_path):
    drain = 4.0
    spool = tmp_path / "spool"
    complete = record(varied_traces(8, seed=4))
    # Traces whose roots never come: their spans wait for a parent until SIGTERM, then go as roots.
    stranded = [span for span in record(varied_traces(4, seed=5)) if span.parent is not None]
    spans = complete + stranded
    expected = expected_runs(complete)
    stranded_ids = {run_id_of(span) for span in stranded}
    with GatewayProcess("--spool-dir", str(spool), "--drain", str(drain), env=gateway_env(closed_port_url())) as down:
        exporter = OTLPSpanExporter(endpoint=f"{down.url}/v1/traces")
        for batch in in_batches(spans, 3):
            assert exporter.export(batch) is SpanExportResult.SUCCESS
        exporter.shutdown()
        started = time.monotonic()  # SIGTERM at once: runs held in memory, spooled or waiting
        status, logged = down.stop()
        took = time.monotonic() - started
    spooled = spooled_run_ids(spool)
    logger.info(
        "sigterm: %d spans held (%d waiting for a parent); exit %d after %.2fs; %d runs in %d spool file(s)",
        len(spans),
        len(stranded),
        status,
        took,
        len(spooled),
        len(list(spool.glob("*.batch"))),
    )
    assert status == 0, logged
    assert took < drain + 2, f"SIGTERM to exit took {took:.1f}s with --drain {drain}"
    assert sorted(spooled) == sorted({e.run_id for e in expected.values()} | stranded_ids), logged

    with LangSmithReceiver(api_key=KEY) as receiver:
        with GatewayProcess("--spool-dir", str(spool), env=gateway_env(receiver.url)) as restarted:
            wait_until_ready(restarted.url)
            # A restarted gateway that nobody sends to yet: the spool is its own to deliver.
            delivered_unprompted = receiver.wait_for_runs(len(spans), timeout=5)
            unprompted = len(receiver.runs)
            # Traffic comes back.
            later = record(varied_traces(1, seed=6))
            exporter = OTLPSpanExporter(endpoint=f"{restarted.url}/v1/traces")
            assert exporter.export(later) is SpanExportResult.SUCCESS
            exporter.shutdown()
            arrived = receiver.wait_for_runs(len(spans) + len(later), timeout=20)
            status, logged = restarted.stop()
        runs = receiver.runs
        assert receiver.rejected == []
        assert receiver.problems() == []
    assert status == 0, logged
    assert arrived, f"{len(runs)} of {len(spans) + len(later)} runs arrived"
    assert sorted(runs) == sorted(spooled + [run_id_of(span) for span in later])
    assert list(spool.glob("*.batch")) == []
    for want in expected.values():
        run = runs[want.run_id]
        assert (run.get("parent_run_id"), run["trace_id"], run["dotted_order"]) == (
            want.parent_run_id,
            want.trace_id,
            want.dotted_order,
        )
    flagged = {run_id for run_id, run in runs.items() if metadata(run).get("OTEL_PARENT_MISSING") == "shutdown"}
    stranded_span_ids = {span.context.span_id for span in stranded}
    stranded_tops = {run_id_of(span) for span in stranded if span.parent.span_id not in stranded_span_ids}
    assert flagged == stranded_tops
    # Last, so that a gateway that waits for traffic before it sends its spool fails here alone.
    assert delivered_unprompted, (
        f"the restarted gateway delivered {unprompted} of the {len(spans)} spooled runs before a request came"
    )
