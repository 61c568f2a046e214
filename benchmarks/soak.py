"""Soak: a steady load through a scripted schedule of faults, every run accounted for, memory flat.

    python benchmarks/soak.py                           # 10 minutes at 500 spans/s, the exporter front
    python benchmarks/soak.py --minutes 1 --rate 200    # a quick check
    python benchmarks/soak.py --front processor --spool # LangSmithSpanProcessor; undelivered runs on disk

Not part of ``make bench`` (it takes ten minutes) nor of the test suite.

The load: agent traces of four spans (an ``invoke_agent`` root, two ``chat`` model calls and an
``execute_tool``, about 1 KB of text each), made at a steady rate on a monotonic schedule, through
a ``BatchSpanProcessor`` sized so that it cannot overflow and the package's exporter (or through
``LangSmithSpanProcessor`` with ``--front processor``). Ids come from a counter, so the run ids the
receiver must end up holding are known without keeping them.

The endpoint: ``otel_langsmith.testing.LangSmithReceiver`` in a child process (its HTTP parsing
does not take the measured process's GIL), driven over a pipe. Every cycle (60 s; half the run if
shorter) it answers, on a script: 503s, 503s with ``Retry-After``, dropped connections, slow
replies (in time, and one past the request timeout: stored, but the client gave up), trickling
replies (a byte at a time: the client's whole-request deadline must cut them). A group of faults
waits until the client has recovered from the previous one (a write answered normally since), so
that groups do not chain into one long backoff. Once, in the middle, the receiver goes down
(listener closed and every open connection cut) for ``--outage`` seconds and comes back on the
same port; no fault is planned around it, nor in the 30 s after (the client's longest backoff).
The memory queue is bounded (``--max-queue-mib``): what an outage piles up beyond it is dropped,
oldest first, and counted. The retry policy is the package's default.

Every ``--sample-every`` seconds a line: spans ended, runs stored, the exporter's stats, the
measured process's RSS (``/proc/self/statm``). At the end, ``provider.shutdown()`` (and with
``--spool``, a second exporter sends what the spool kept, as the next process would), then every
run is checked: stored at the receiver, or counted in ``stats().dropped``/``runs_refused``. A run
posted twice is explained when it was in a request the receiver stored but answered too late.

Memory is flat when (1) the highest RSS after the warm-up (the first minute; a quarter of a
shorter run) exceeds the RSS at the warm-up by at most ``--flat-mib`` (default: 1.5 times the
queue bound plus 16 MiB: the queue may fill during the outage, and its bound counts payload bytes
and an estimate of their overhead, not the allocator's), and (2) from 40 s after the receiver came
back (the client's longest backoff, then some) to the end, RSS sets no new high above the highest
seen before by more than ``--late-mib`` (default 8): once the outage's high-water mark is reached,
a leak is what would still climb (not judged when fewer than two samples fall in that stretch).

Exit status 1 when a run is neither stored nor counted, a run was stored that was never made, a
run was posted twice with no late answer to explain it, a span was lost before the exporter,
something is still held after shutdown, the receiver took writes while down, or memory grew.
``--timeline FILE`` writes every write request the receiver answered, and the samples, as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind

from otel_langsmith import LangSmithSpanExporter, LangSmithSpanProcessor
from otel_langsmith import _ids as run_ids
from otel_langsmith.testing import Fault, LangSmithReceiver

MIB = 1024 * 1024
SPANS_PER_TRACE = 4
# What the receiver keeps of each run: ten minutes of content would fill the child's memory.
_KEPT = ("id", "trace_id", "parent_run_id", "dotted_order", "name", "run_type", "start_time", "end_time")
# Seconds a stop may take (the receiver's accept loop polls every 50 ms) before writes mean it is not down.
_STOPPING = 0.5
# Planned faults answered with a status carry this message, to tell them from the receiver's own refusals.
_PLANNED = "soak:"


# -- the receiver, in its own process -----------------------------------------------------------------


class _Faults(deque):  # type: ignore[type-arg]
    """The receiver's planned answers; the handler thread that takes one remembers it."""

    def __init__(self, local: threading.local) -> None:
        super().__init__()
        self._local = local

    def popleft(self) -> Fault:
        fault: Fault = super().popleft()
        self._local.fault = fault
        return fault


class SoakReceiver(LangSmithReceiver):
    """Keeps each run's identity only (ten minutes of content would fill the child's memory), and
    which runs were stored by a request answered late. Runs in the child process."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self.faults = _Faults(self._local)
        self.posts = 0
        #: Runs stored by a request whose answer was slow or trickled: the client may have given up
        #: on it and sent them again.
        self.late: set[str] = set()
        #: Every write: (time.monotonic() when it arrived, status, operations, the planned fault's message).
        self.writes: list[tuple[float, int, int, str]] = []
        #: When the receiver went down (time.monotonic()), while it is down.
        self.down_since: float | None = None
        #: Writes that arrived while down (after the stop had time to close the listener and cut the
        #: connections; a request already in flight is finished, as by a server stopping gracefully).
        self.writes_while_down = 0
        #: Writes answered normally since the last planned fault was taken.
        self.calm_writes = 0

    def _store(self, operation: str, run: dict[str, Any]) -> None:
        fault = getattr(self._local, "fault", None)
        if fault is not None and fault.status is None and (fault.delay or fault.trickle):
            self.late.add(str(run["id"]))
        self.posts += operation == "post"
        super()._store(operation, {key: run[key] for key in _KEPT if key in run})

    def _record(
        self,
        method: str,
        path: str,
        status: int,
        headers: dict[str, str],
        ops: int,
        size: int,
        message: str = "",
        arrived: float | None = None,
    ) -> None:
        super()._record(method, path, status, headers, ops, size, message, arrived)
        if method != "POST":
            return
        # Once per write request, after its runs are stored, before the answer.
        fault = getattr(self._local, "fault", None)
        self._local.fault = None
        at = time.monotonic() if arrived is None else arrived
        with self._lock:
            self.writes.append((at, status, ops, fault.message if fault is not None else ""))
            self.calm_writes = 0 if fault is not None else self.calm_writes + (status == 202)
            down_since = self.down_since
            if down_since is not None and at > down_since + _STOPPING:
                self.writes_while_down += 1

    def stop(self) -> None:
        self.down_since = time.monotonic()
        super().stop()

    def start(self) -> SoakReceiver:
        super().start()
        self.down_since = None
        return self

    def gaps(self) -> dict[str, float]:
        """For each kind of planned fault, the longest time from its request's arrival to the next
        write's: a trickle the client does not cut shows as the whole trickle."""
        with self._lock:
            writes = sorted(self.writes)
        longest: dict[str, float] = {}
        for (at, _, _, label), (after, *_) in itertools.pairwise(writes):
            if label:
                longest[label] = max(longest.get(label, 0.0), after - at)
        return longest

    def calm(self) -> int:
        """Forget the planned faults not consumed yet; how many there were."""
        with self._lock:
            waiting = len(self.faults)
            self.faults.clear()
        return waiting

    def counts(self) -> dict[str, int]:
        requests = self.requests
        writes = [r for r in requests if r.method == "POST"]
        return {
            "stored": self.posts - self.duplicate_posts,
            "duplicate_posts": self.duplicate_posts,
            "writes": len(writes),
            "gets": len(requests) - len(writes),
            "planned": sum(r.message.startswith(_PLANNED) for r in writes),  # answered by a fault's status
            "rejected": sum(r.status >= 400 and not r.message.startswith(_PLANNED) for r in writes),
            "writes_while_down": self.writes_while_down,
            "faults_waiting": len(self.faults),
            "calm_writes": self.calm_writes,
        }

    def check(self, trace_base: int, span_base: int, traces: int) -> dict[str, Any]:
        """Every run the parent made (known from its id counters), against what is stored."""
        stored = set(self.runs)
        found = 0
        missing: list[str] = []
        for index in range(traces):
            made = [run_ids.root_run_id(trace_base + index)]
            first = span_base + index * SPANS_PER_TRACE  # the root's span id, then its children's
            made += [run_ids.span_run_id(first + offset) for offset in range(1, SPANS_PER_TRACE)]
            for run_id in made:
                if run_id in stored:
                    found += 1
                else:
                    missing.append(run_id)
        posted_twice = [run_id for run_id in stored if self.operations(run_id).count("post") > 1]
        rejected = [r for r in self.rejected if not r.message.startswith(_PLANNED)]
        return {
            **self.counts(),
            "expected": traces * SPANS_PER_TRACE,
            "found": found,
            "missing": len(missing),
            "missing_sample": missing[:5],
            "unexpected": len(stored) - found,
            "posted_twice": len(posted_twice),
            "posted_twice_explained": sum(run_id in self.late for run_id in posted_twice),
            "unexplained_sample": [run_id for run_id in posted_twice if run_id not in self.late][:5],
            "late_runs": len(self.late),
            "rejected_sample": [f"{r.status} {r.message[:200]}" for r in rejected[:3]],
            "tree_problems": len(self.problems()),
            "gaps": self.gaps(),
            "writes_log": list(self.writes),
        }


def _serve(connection: Any) -> None:
    """The child process: a receiver, and a loop answering the parent's commands."""
    receiver = SoakReceiver().start()
    connection.send((receiver.url, receiver.api_key))
    while True:
        command, argument = connection.recv()
        reply: Any = None
        if command == "plan":
            receiver.plan(*argument)
        elif command == "stop":
            receiver.stop()  # the listener closed and every kept-alive connection cut
        elif command == "start":
            receiver.start()
        elif command == "calm":
            reply = receiver.calm()
        elif command == "counts":
            reply = receiver.counts()
        elif command == "check":
            reply = receiver.check(*argument)
        elif command == "quit":
            receiver.stop()
            connection.send(None)
            return
        connection.send(reply)


class Receiver:
    """The parent's handle on the receiver's process. Thread-safe."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="soak-receiver", daemon=True)
        self._process.start()
        self._lock = threading.Lock()
        self.url, self.api_key = self._connection.recv()

    def cpu_seconds(self) -> float:
        """User and system CPU the receiver's process has used."""
        with open(f"/proc/{self._process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def call(self, command: str, argument: Any = None) -> Any:
        with self._lock:
            self._connection.send((command, argument))
            return self._connection.recv()

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self.call("quit")
            except (OSError, EOFError):
                pass
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


# -- the load ------------------------------------------------------------------------------------------


class SequentialIds(IdGenerator):
    """Trace and span ids counted up from random bases: the runs made are known from the counts,
    without keeping a set that would grow in the measured process."""

    def __init__(self) -> None:
        rng = random.SystemRandom()
        self.trace_base = (rng.getrandbits(62) + 1) << 64
        self.span_base = (rng.getrandbits(30) + 1) << 32
        self.traces = self.spans = 0

    def generate_trace_id(self) -> int:
        self.traces += 1
        return self.trace_base + self.traces - 1

    def generate_span_id(self) -> int:
        self.spans += 1
        return self.span_base + self.spans - 1


_WORDS = (
    "the weather forecast city temperature tomorrow rain wind humidity report station sensor hourly daily "
    "average maximum minimum coastal northern region pressure front cloud cover visibility advisory travel "
    "flight airport delay booking hotel price availability guest review rating distance walking museum"
).split()


class Content:
    """About 1 KB of text per span, from a pool made once (the load is the bridge's work, not ours)."""

    def __init__(self, size: int = 101, seed: int = 11) -> None:
        rng = random.Random(seed)

        def text(chars: int) -> str:
            words: list[str] = []
            while sum(map(len, words)) + len(words) < chars:
                words.append(rng.choice(_WORDS))
            return " ".join(words).capitalize() + "."

        self.questions = [json.dumps({"question": text(450)}) for _ in range(size)]
        self.answers = [json.dumps({"answer": text(450)}) for _ in range(size)]
        self.prompts = [
            json.dumps([{"role": "user", "parts": [{"type": "text", "content": text(850)}]}]) for _ in range(size)
        ]
        self.replies = [
            json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text(150)}]}]) for _ in range(size)
        ]
        self.results = [json.dumps({"forecast": text(900)}) for _ in range(size)]
        self.size = size


def make_trace(tracer: Any, content: Content, index: int) -> None:
    pick = index % content.size
    root = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "soak-agent", "soak.trace": index}
    root["input.value"] = content.questions[pick]
    with tracer.start_as_current_span("invoke_agent soak-agent", attributes=root) as agent:
        for step in (0, 1):
            chat = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 210 + step,
                "gen_ai.usage.output_tokens": 40,
                "gen_ai.input.messages": content.prompts[(pick + step) % content.size],
                "gen_ai.output.messages": content.replies[(pick + step) % content.size],
            }
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=chat):
                pass
            if step == 0:
                tool = {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "get_forecast",
                    "gen_ai.tool.call.arguments": '{"city": "Lyon", "days": 3}',
                    "gen_ai.tool.call.result": content.results[pick],
                }
                with tracer.start_as_current_span("execute_tool get_forecast", attributes=tool):
                    pass
        agent.set_attribute("output.value", content.answers[pick])


@dataclass
class Production:
    traces: int = 0
    worst_lag: float = 0.0
    seconds: float = 0.0


def produce(tracer: Any, content: Content, *, rate: float, seconds: float, stop: threading.Event) -> Production:
    """Traces at ``rate`` spans per second for ``seconds``, on a monotonic schedule: a trace late on
    its slot is made at once, and the next keep their own slots."""
    interval = SPANS_PER_TRACE / rate
    done = Production()
    started = time.monotonic()
    while not stop.is_set():
        due = started + done.traces * interval
        if due - started >= seconds:
            break
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        else:
            done.worst_lag = max(done.worst_lag, now - due)
        make_trace(tracer, content, done.traces)
        done.traces += 1
    done.seconds = time.monotonic() - started
    return done


# -- the schedule --------------------------------------------------------------------------------------


@dataclass(order=True)
class Event:
    at: float
    label: str = field(compare=False)
    commands: list[tuple[str, Any]] = field(compare=False, default_factory=list)
    #: Planned faults wait for the client to recover from the previous ones (a write answered
    #: normally since), so that groups do not chain into one long backoff; past this time, skipped.
    latest: float | None = field(compare=False, default=None)


def schedule(seconds: float, timeout: float, outage: float) -> tuple[list[Event], float, float]:
    """The fault script, and when the receiver goes down and comes back."""

    def fault(what: str, **how: Any) -> Fault:
        return Fault(message=f"{_PLANNED} {what}", **how)

    slow, late = 0.6 * timeout, 1.3 * timeout
    faults = [
        ("503 x3", [fault("503")] * 3),
        ("503 with Retry-After: 2, x2", [fault("503 retry-after 2", retry_after="2")] * 2),
        ("dropped connections x3", [fault("dropped connection", drop_connection=True)] * 3),
        (
            f"slow replies: 2 stored in {slow:.1f}s, a 503 in {slow:.1f}s, 1 stored in {late:.1f}s (past the timeout)",
            [fault("slow, stored", status=None, delay=slow)] * 2
            + [fault("slow 503", delay=slow), fault("too slow, stored", status=None, delay=late)],
        ),
        (
            "trickling replies (0.2 s a byte): a 202 after storing, a 503",
            [fault("trickled 202", status=None, trickle=0.2), fault("trickled 503", trickle=0.2)],
        ),
    ]
    cycle = min(60.0, seconds / 2)
    down = seconds / 2
    up = down + outage
    events = [
        Event(down, f"receiver down for {outage:.0f}s (listener closed, connections cut)", [("stop", None)]),
        Event(up, "receiver up again, same port", [("start", None)]),
    ]
    start = 0.0
    while start < seconds:
        for index, (label, planned) in enumerate(faults):
            at = start + 1 + index * cycle / 6
            # Nothing planned around the outage, nor while the client backs off after it (up to
            # RetryPolicy's 30 s): its effects stay apart from the script's.
            if at < seconds - 5 and not (down - 5 <= at < up + 30):
                latest = down - 5 if at < down else seconds - 5
                events.append(Event(at, f"plan {label}", [("plan", planned)], latest))
        start += cycle
    return sorted(events), down, up


# -- measuring -----------------------------------------------------------------------------------------


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


class LogCount(logging.Handler):
    """The package's log lines, counted by level and by minute (a flood shows)."""

    def __init__(self, started: float) -> None:
        super().__init__(logging.DEBUG)
        self.started = started
        self.levels: Counter[str] = Counter()
        self.minutes: Counter[int] = Counter()

    def busiest(self) -> int:
        return max(self.minutes.values(), default=0)

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.levels[record.levelname] += 1
            self.minutes[int((time.monotonic() - self.started) // 60)] += 1


@dataclass
class Sample:
    at: float
    rss: float
    ended: int
    stats: Any
    counts: dict[str, int]


class Conductor(threading.Thread):
    """Runs the script's events and takes the samples, on the run's clock."""

    def __init__(
        self,
        receiver: Receiver,
        events: list[Event],
        stats: Callable[[], Any],
        ended: Callable[[], int],
        *,
        started: float,
        every: float,
    ) -> None:
        super().__init__(name="soak-conductor", daemon=True)
        self.receiver, self.stats, self.ended = receiver, stats, ended
        self.events = deque(event for event in events if event.latest is None)
        #: Planned faults, in order: each waits for the client to recover from the one before.
        self.groups = deque(event for event in events if event.latest is not None)
        self.started, self.every = started, every
        self.samples: list[Sample] = []
        self.skipped: list[str] = []
        self.finish = threading.Event()
        self.down = False
        self.error = ""

    def now(self) -> float:
        return time.monotonic() - self.started

    def run(self) -> None:
        try:
            self._conduct()
        except BaseException as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            raise

    def _conduct(self) -> None:
        next_sample = self.every
        while not self.finish.is_set():
            due = min([next_sample, *(queue[0].at for queue in (self.events, self.groups) if queue)])
            if self.finish.wait(max(0.0, due - self.now())):
                return
            while self.events and self.events[0].at <= self.now():
                self.apply(self.events.popleft())
            if self.groups and self.groups[0].at <= self.now():
                self.plan(self.groups[0])
            if next_sample <= self.now():
                self.sample()
                next_sample += self.every

    def plan(self, group: Event) -> None:
        """Plan a group of faults once the client has recovered from the last one; else look again
        in half a second, or skip it past its latest time."""
        assert group.latest is not None
        if self.now() > group.latest:
            self.groups.popleft()
            self.skipped.append(group.label)
            print(f"t={self.now():6.1f}s  skipped ({group.label}): the client had not recovered in time", flush=True)
            return
        counts = self.receiver.call("counts")
        if counts["faults_waiting"] or not counts["calm_writes"]:
            group.at = self.now() + 0.5
            return
        self.groups.popleft()
        self.apply(group)

    def apply(self, event: Event) -> None:
        said = ""
        for command, argument in event.commands:
            reply = self.receiver.call(command, argument)
            if command == "stop":
                self.down, said = True, f": {reply} connection(s) cut"
            elif command == "start":
                self.down = False
        print(f"t={self.now():6.1f}s  {event.label}{said}", flush=True)

    def sample(self, label: str = "") -> Sample:
        stats = self.stats()
        taken = Sample(self.now(), rss_mib(), self.ended(), stats, self.receiver.call("counts"))
        self.samples.append(taken)
        dropped = ",".join(f"{reason}={count}" for reason, count in stats.dropped.items()) or "0"
        print(
            f"t={taken.at:6.1f}s  ended {taken.ended:>9,}  stored {taken.counts['stored']:>9,}  "
            f"queued {stats.queued_runs:>6,}  waiting {stats.waiting:>4,}  retried {stats.runs_retried:>7,}  "
            f"dropped {dropped}  requests {stats.requests:>6,}  rss {taken.rss:6.1f} MiB{label}",
            flush=True,
        )
        return taken


# -- the run -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0, help="spans per second")
    parser.add_argument("--front", choices=("exporter", "processor"), default="exporter")
    parser.add_argument("--timeout", type=float, default=3.0, help="the exporter's whole-request timeout (s)")
    parser.add_argument("--max-queue-mib", type=float, default=32.0, help="the exporter's memory queue bound")
    parser.add_argument("--spool", action="store_true", help="a spool directory (temporary) for undelivered runs")
    parser.add_argument("--outage", type=float, default=20.0, help="seconds the receiver is down, once")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between sample lines")
    parser.add_argument("--timeline", help="write every request the receiver answered, and the samples, here (JSON)")
    parser.add_argument("--flat-mib", type=float, help="allowed RSS rise after the warm-up (default: 1.5 queue + 16)")
    parser.add_argument("--late-mib", type=float, default=8.0, help="allowed new RSS high well after the outage")
    args = parser.parse_args()

    seconds = args.minutes * 60
    outage = min(args.outage, seconds / 4)
    warm_up = min(60.0, seconds / 4)
    flat_mib = args.flat_mib if args.flat_mib is not None else 1.5 * args.max_queue_mib + 16

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    receiver = Receiver()
    spool_dir = tempfile.mkdtemp(prefix="soak-spool-") if args.spool else None
    try:
        return run(args, receiver, seconds=seconds, outage=outage, warm_up=warm_up, flat_mib=flat_mib, spool=spool_dir)
    finally:
        receiver.close()
        if spool_dir is not None:
            shutil.rmtree(spool_dir, ignore_errors=True)


def run(
    args: argparse.Namespace,
    receiver: Receiver,
    *,
    seconds: float,
    outage: float,
    warm_up: float,
    flat_mib: float,
    spool: str | None,
) -> int:
    options: dict[str, Any] = {
        "endpoint": receiver.url,
        "api_key": receiver.api_key,
        "project": "soak",
        "timeout": args.timeout,
        "max_queue_bytes": int(args.max_queue_mib * MIB),
        "spool_dir": spool,
    }
    counter = SequentialIds()
    provider = TracerProvider(id_generator=counter)
    front: Any
    if args.front == "exporter":
        front = LangSmithSpanExporter(**options)
        # export() never waits for the network: a queue of 20 s of spans cannot fill.
        batch = BatchSpanProcessor(front, max_queue_size=max(2048, int(args.rate * 20)))
        provider.add_span_processor(batch)
    else:
        front = LangSmithSpanProcessor(**options)
        provider.add_span_processor(front)
    tracer = provider.get_tracer("soak")
    content = Content()
    events, down, up = schedule(seconds, args.timeout, outage)

    print(
        f"soak: {args.minutes:g} min at {args.rate:g} spans/s ({SPANS_PER_TRACE} spans a trace, ~1 KB of text each), "
        f"front {args.front}, timeout {args.timeout:g}s, queue {args.max_queue_mib:g} MiB"
        f"{', spool ' + spool if spool else ''}; receiver in a child process at {receiver.url}; "
        f"outage {down:.0f}-{up:.0f}s; warm-up {warm_up:.0f}s; Python {sys.version.split()[0]}",
        flush=True,
    )
    started = time.monotonic()
    logs = LogCount(started)
    logging.getLogger("otel_langsmith").addHandler(logs)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    conductor = Conductor(
        receiver, events, front.stats, lambda: counter.spans, started=started, every=min(args.sample_every, seconds / 6)
    )
    conductor.start()
    stop = threading.Event()
    try:
        made = produce(tracer, content, rate=args.rate, seconds=seconds, stop=stop)
    except KeyboardInterrupt:
        stop.set()
        print("interrupted: shutting down and checking what was made so far", flush=True)
        made = Production(traces=counter.traces, seconds=time.monotonic() - started)
    conductor.finish.set()
    conductor.join()
    if conductor.down:
        receiver.call("start")
    last = conductor.sample("  (load over)")
    unconsumed = receiver.call("calm")
    cpu_load = resource.getrusage(resource.RUSAGE_SELF)

    shutdown_started = time.monotonic()
    provider.shutdown()
    shutdown_seconds = time.monotonic() - shutdown_started
    stats = front.stats()
    later = None
    if spool is not None:
        # What the spool kept goes with the next process: a second exporter on the same directory.
        second = LangSmithSpanExporter(**options)
        second.force_flush(60_000)
        second.shutdown()
        later = second.stats()
    check = receiver.call("check", (counter.trace_base, counter.span_base, made.traces))
    check["cpu"] = receiver.cpu_seconds()
    writes = check.pop("writes_log")
    if args.timeline:
        with open(args.timeline, "w") as out:
            json.dump(
                {
                    "writes": [[round(at - started, 3), status, ops, label] for at, status, ops, label in writes],
                    "samples": [
                        [round(s.at, 1), round(s.rss, 1), s.ended, s.counts["stored"], s.stats.queued_runs]
                        for s in conductor.samples
                    ],
                },
                out,
            )
    return report(
        args,
        made=made,
        counter=counter,
        stats=stats,
        later=later,
        check=check,
        samples=conductor.samples,
        last=last,
        warm_up=warm_up,
        up=up,
        flat_mib=flat_mib,
        logs=logs,
        unconsumed=unconsumed,
        skipped=len(conductor.skipped),
        conductor_error=conductor.error,
        shutdown_seconds=shutdown_seconds,
        cpu=cpu_load.ru_utime + cpu_load.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime,
    )


def report(
    args: argparse.Namespace,
    *,
    made: Production,
    counter: SequentialIds,
    stats: Any,
    later: Any,
    check: dict[str, Any],
    samples: list[Sample],
    last: Sample,
    warm_up: float,
    up: float,
    flat_mib: float,
    logs: LogCount,
    unconsumed: int,
    skipped: int,
    conductor_error: str,
    shutdown_seconds: float,
    cpu: float,
) -> int:
    failures: list[str] = [f"the schedule stopped: {conductor_error}"] if conductor_error else []
    ended = counter.spans
    if ended != made.traces * SPANS_PER_TRACE or counter.traces != made.traces:
        failures.append(f"ids: {counter.traces} traces and {ended} spans for {made.traces} traces made")
    if stats.spans_received != ended:
        failures.append(f"{ended - stats.spans_received} span(s) never reached the {args.front}")
    dropped = dict(stats.dropped)
    counted = stats.runs_dropped + stats.runs_refused
    if later is not None:
        counted += later.runs_dropped + later.runs_refused
        for reason, count in later.dropped.items():
            dropped[f"{reason} (spool pass)"] = count
    unaccounted = check["missing"] - counted
    if unaccounted > 0:
        failures.append(f"{unaccounted} run(s) neither stored nor counted (missing e.g. {check['missing_sample']})")
    if check["unexpected"]:
        failures.append(f"{check['unexpected']} stored run(s) that were never made")
    unexplained = check["posted_twice"] - check["posted_twice_explained"]
    if unexplained:
        failures.append(f"{unexplained} run(s) posted twice with no late answer (e.g. {check['unexplained_sample']})")
    stored_and_counted = max(0, counted - check["missing"])
    if stored_and_counted > check["late_runs"] - check["posted_twice_explained"]:
        failures.append(f"{stored_and_counted} run(s) counted lost yet stored, more than late answers explain")
    if check["writes_while_down"]:
        failures.append(f"the receiver took {check['writes_while_down']} write(s) while down: the outage was not one")
    held = {
        "queued": stats.queued_runs,
        "waiting": stats.waiting,
        "open": stats.open_spans,
        "ended_unsent": stats.ended_unsent,
    }
    if any(held.values()):
        failures.append(f"still held after shutdown: {held}")

    after = [s for s in samples if s.at >= warm_up - 1e-6]
    at_warm = after[0] if after else last
    peak = max(after, key=lambda s: s.rss) if after else last
    rise = peak.rss - at_warm.rss
    if rise > flat_mib:
        failures.append(
            f"memory grew: RSS {at_warm.rss:.1f} MiB at {at_warm.at:.0f}s, {peak.rss:.1f} at {peak.at:.0f}s"
        )
    recovered = up + 40
    tail = [s.rss for s in after if s.at >= recovered]
    late_rise = None
    if len(tail) >= 2:
        late_rise = max(tail) - max([s.rss for s in after if s.at < recovered] or [at_warm.rss])
        if late_rise > args.late_mib:
            failures.append(f"memory still climbing: a new RSS high of {max(tail):.1f} MiB after {recovered:.0f}s")
    flat = rise <= flat_mib and (late_rise is None or late_rise <= args.late_mib)
    late_said = (
        f"{late_rise:+.1f} MiB (allowed {args.late_mib:g})" if late_rise is not None else "not judged (run too short)"
    )

    rate = made.traces * SPANS_PER_TRACE / made.seconds if made.seconds else 0.0
    print()
    print(f"## Soak: {args.minutes:g} min at {args.rate:g} spans/s, front {args.front}")
    print()
    print("| measure | value |")
    print("|---|---|")
    rows = [
        ("spans ended (traces)", f"{ended:,} ({made.traces:,}), {rate:,.0f} spans/s, worst lag {made.worst_lag:.3f} s"),
        ("spans received by the front", f"{stats.spans_received:,}"),
        ("runs made", f"{check['expected']:,}"),
        ("runs stored (exactly the ones made)", f"{check['found']:,}; {check['unexpected']:,} never made"),
        ("runs missing at the receiver", f"{check['missing']:,}"),
        ("runs counted dropped, by reason", f"{counted - stats.runs_refused:,} {dropped or ''}".rstrip()),
        ("runs refused (`runs_refused`)", f"{stats.runs_refused:,}"),
        ("counted lost but stored anyway (a late answer, then dropped)", f"{stored_and_counted:,}"),
        (
            "runs posted twice (receiver `duplicate_posts`)",
            f"{check['posted_twice']:,} ({check['duplicate_posts']:,}); explained by a late answer "
            f"{check['posted_twice_explained']:,} of {check['late_runs']:,} runs stored by late answers",
        ),
        (
            "runs exported / retried / spooled",
            f"{stats.runs_exported:,} / {stats.runs_retried:,} / {stats.runs_spooled:,}",
        ),
        (
            "requests: client / receiver writes (planned faults) / GET",
            f"{stats.requests:,} / {check['writes']:,} ({check['planned']:,}) / {check['gets']:,}",
        ),
        ("writes the receiver took while down", f"{check['writes_while_down']:,}"),
        (
            "longest time from a faulted write to the next one",
            ", ".join(f"{label.removeprefix(_PLANNED).strip()} {gap:.1f} s" for label, gap in check["gaps"].items()),
        ),
        (
            "receiver process CPU",
            f"{check['cpu']:.1f} s ({check['cpu'] / max(1, check['writes']) * 1e3:.1f} ms a write)",
        ),
        ("rejected by the receiver's checks", f"{check['rejected']:,} {check['rejected_sample'] or ''}".rstrip()),
        ("dotted-order problems (e.g. a parent dropped)", f"{check['tree_problems']:,}"),
        ("planned faults never consumed; groups skipped (no recovery in time)", f"{unconsumed}; {skipped}"),
        ("shutdown", f"{shutdown_seconds:.1f} s; held after: {held}"),
        (
            f"RSS at warm-up ({at_warm.at:.0f} s) / at the end / max after warm-up",
            f"{at_warm.rss:.1f} / {last.rss:.1f} / {peak.rss:.1f} MiB (at {peak.at:.0f} s)",
        ),
        (
            "memory flat",
            f"{'yes' if flat else 'NO'}: rise {rise:+.1f} MiB (allowed {flat_mib:g}); "
            f"new high from {recovered:.0f} s on {late_said}",
        ),
        ("CPU of the measured process", f"{cpu:.1f} s ({cpu / max(1, ended) * 1e6:.0f} us per span)"),
        (
            "package log lines (warning+)",
            f"{sum(logs.levels.values())} {dict(logs.levels)}, at most {logs.busiest()} in one minute",
        ),
    ]
    rows.append(("RSS every sample (MiB)", " ".join(f"{s.rss:.0f}" for s in samples)))
    if later is not None:
        rows.append(("spool pass (the next process)", f"exported {later.runs_exported:,}, dropped {later.dropped}"))
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()
    for failure in failures:
        print(f"FAIL: {failure}")
    print("PASS" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
