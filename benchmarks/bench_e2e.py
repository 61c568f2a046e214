"""What getting traces into LangSmith costs a whole process, the bridge against what users would pick.

    make bench        # or: python benchmarks/bench_e2e.py [--rounds R] [--mix agent ...]

The same workload (``workloads.py``: agent, service and RAG mixes, content generated from a seed)
is traced six ways, each in a child process of its own, sending to one loopback sink
(``sink.py``, a process of its own too) that advertises multipart and zstd in its ``/info``:

- sdk: the LangSmith SDK, ``@traceable`` functions and its background uploader;
- exporter: OpenTelemetry, a ``BatchSpanProcessor`` and ``LangSmithSpanExporter``;
- processor: OpenTelemetry and ``LangSmithSpanProcessor``;
- otlp: OpenTelemetry, a ``BatchSpanProcessor`` and ``OTLPSpanExporter`` (LangSmith's OTLP ingest);
- noop: OpenTelemetry, a ``BatchSpanProcessor`` and an exporter that does nothing;
- untraced: the workload alone.

Each child generates its runs, warms up (a tenth of the runs, delivered and flushed), then measures
the rest: the process CPU (``time.process_time``: every thread, sending included, until a flush
returns with everything delivered), the application thread's CPU (``time.thread_time``) and wall
time. The ``BatchSpanProcessor`` queue holds a whole child's spans, so it never drops one.

Then the sink's counts are checked before anything is reported: every contender must have
delivered every run it traced (each run id completed once at least, each OTLP span received), and
the no-op exporter must have seen every span; otherwise the benchmark stops with an error.

Rounds alternate the contenders (the order rotates each round). Reported per mix: CPU per run net
of the untraced workload (median of rounds), own cost (minus the no-op contender), the ratios the
targets name with the spread of the per-round ratios, the application thread's figures per call,
and the requests and bytes each contender sent. Then where the exporters' own cost goes: each
stage timed alone over the mix's spans in memory (convert and place, encode, multipart, zstd; the
OTLP exporter's encoding), against what the end-to-end runs measured on the exporter's threads
and on the application's thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import workloads  # noqa: E402 (after the path it lives on)

CONTENDERS = ("sdk", "exporter", "processor", "otlp", "noop", "untraced")
RUNS = {"agent": 90, "service": 600, "rag": 900}  # a second or two of traced work a child
SEED = 7
API_KEY = "lsv2_pt_bench"


# -- in the child: one contender, one mix ----------------------------------------------------------


def _tracer_provider(processor: Any) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(processor)
    return provider


def _batch(exporter: Any, spans: int) -> Any:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # A queue that holds every span of the child: none dropped, whatever the exporter's pace.
    return BatchSpanProcessor(exporter, max_queue_size=max(spans + 1, 2048))


class _Counting:
    """The no-op exporter, counting what it is given (the check that the SDK's queue dropped none)."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


@dataclass
class _Setup:
    instrumentation: workloads.Instrumentation
    flush: Callable[[], None]
    exported: Callable[[], int] = lambda: -1  # spans the no-op exporter saw


def _setup(contender: str, url: str, spans: int) -> _Setup:
    """The contender set up as its documentation shows, sending to ``url``."""
    if contender == "untraced":
        return _Setup(workloads.Untraced(), lambda: None)
    if contender == "sdk":
        os.environ.update(
            LANGSMITH_TRACING="true", LANGSMITH_ENDPOINT=url, LANGSMITH_API_KEY=API_KEY, LANGSMITH_PROJECT="bench"
        )
        from langsmith.run_trees import get_cached_client

        return _Setup(workloads.LangSmithInstrumentation(), lambda: get_cached_client().flush())
    if contender == "processor":
        from otel_langsmith import LangSmithSpanProcessor

        live = LangSmithSpanProcessor(endpoint=url, api_key=API_KEY, project="bench")
        provider = _tracer_provider(live)
        return _Setup(workloads.OTelInstrumentation(provider.get_tracer("bench")), lambda: live.force_flush())
    exporter: Any
    if contender == "exporter":
        from otel_langsmith import LangSmithSpanExporter

        exporter = LangSmithSpanExporter(endpoint=url, api_key=API_KEY, project="bench")
    elif contender == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        headers = {"x-api-key": API_KEY, "Langsmith-Project": "bench"}
        exporter = OTLPSpanExporter(endpoint=f"{url}/otel/v1/traces", headers=headers)
    else:
        exporter = _Counting()
    provider = _tracer_provider(_batch(exporter, spans))

    def flush() -> None:
        provider.force_flush()
        exporter.force_flush()  # the bridge's export only queues: wait for the sending too

    setup = _Setup(workloads.OTelInstrumentation(provider.get_tracer("bench")), flush)
    if isinstance(exporter, _Counting):
        setup.exported = lambda: exporter.spans
    return setup


def child(contender: str, mix: str, url: str) -> dict[str, Any]:
    """Trace the mix with one contender; what it cost, measured in this process."""
    runs = workloads.generate(mix, RUNS[mix], SEED)
    warmup = runs[: max(3, len(runs) // 10)]
    spans = sum(run.calls for run in runs) + sum(run.calls for run in warmup)
    setup = _setup(contender, url, spans)
    drive, traced = workloads.drive, setup.instrumentation
    for run in warmup:
        drive(run, traced)
    setup.flush()

    process, thread, wall = time.process_time(), time.thread_time(), time.perf_counter()
    for run in runs:
        drive(run, traced)
    thread, wall = time.thread_time() - thread, time.perf_counter() - wall
    setup.flush()
    process = time.process_time() - process
    return {
        "process": process,
        "thread": thread,
        "wall": wall,
        "runs": len(runs),
        "spans": spans,
        "calls": sum(run.calls for run in runs),
        "exported": setup.exported(),
    }


CONVERT_PREFIX = "convert, "


def _converter() -> Callable[[Any], Any]:
    from otel_langsmith._convert import SpanConverter
    from otel_langsmith._convert.redact import Redaction

    return SpanConverter(project="bench", redaction=Redaction(False, False, None, None), logs=lambda _, __: ())


def _converted(spans: Sequence[Any]) -> list[dict[str, Any]]:
    """The spans converted (not placed) by a converter of their own, as the exporter converts."""
    return [pending.run for pending in map(_converter(), spans) if pending is not None]


def stages(mix: str) -> dict[str, float]:
    """The exporter's stages timed one by one (process CPU per run, median of three passes) over the
    mix's spans recorded in memory, beside the OTLP exporter's encoding."""
    import gc

    from bench_client import BOUNDARY, _placed
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_langsmith import _wire as wire
    from otel_langsmith._transport import DEFAULT_SIZE_LIMIT, DEFAULT_SIZE_LIMIT_BYTES

    memory = InMemorySpanExporter()
    provider = _tracer_provider(SimpleSpanProcessor(memory))
    runs = workloads.generate(mix, RUNS[mix], SEED)
    traced = workloads.OTelInstrumentation(provider.get_tracer("bench"))
    for run in runs:
        workloads.drive(run, traced)
    spans = memory.get_finished_spans()
    placed = [run for ready in _placed(spans) for run in ready]
    encoded = [wire.encode_run(run) for run in placed]
    batches = list(wire.batches(encoded, max_operations=DEFAULT_SIZE_LIMIT, max_bytes=DEFAULT_SIZE_LIMIT_BYTES))
    bodies = [wire.multipart_body(batch, BOUNDARY) for batch in batches]
    steps: dict[str, Callable[[], object]] = {
        "convert and place": lambda: [run for ready in _placed(spans) for run in ready],
        "encode (orjson)": lambda: [wire.encode_run(run) for run in placed],
        "multipart": lambda: [wire.multipart_body(batch, BOUNDARY) for batch in batches],
        "zstd": lambda: [wire.compress(body, "zstd") for body in bodies],
        "OTLP encode": lambda: [
            encode_spans(spans[at : at + 512]).SerializeToString() for at in range(0, len(spans), 512)
        ],
    }
    # Conversion alone, by the run type each span becomes, in the spans' order (a model call's
    # conversation is converted from the one before it, as in the exporter).
    kinds: dict[str, list[Any]] = {}
    convert = _converter()
    for span in spans:
        pending = convert(span)
        if pending is not None:
            kinds.setdefault(pending.run["run_type"], []).append(span)
    for kind, of_kind in kinds.items():
        steps[f"{CONVERT_PREFIX}{kind}"] = lambda of_kind=of_kind: _converted(of_kind)
    timings: dict[str, list[float]] = {name: [] for name in steps}
    # The collector is off while a stage runs: what it costs the process shows in the end-to-end figures.
    for _ in range(3):
        for name, step in steps.items():
            gc.collect()
            gc.disable()
            started = time.process_time()
            step()
            timings[name].append(time.process_time() - started)
            gc.enable()
    found = {name: statistics.median(values) / len(runs) for name, values in timings.items()}
    found["requests"] = len(batches) / len(runs)
    return found


# -- in the parent: rounds, the delivery check, the report -----------------------------------------


def _sink() -> tuple[subprocess.Popen[str], str]:
    sink = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "sink.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None
    url = sink.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        sink.kill()
        raise SystemExit("the sink did not start")
    return sink, url


def _counts(url: str, tag: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_counts/{tag}", timeout=30) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def _environment() -> dict[str, str]:
    """The parent's environment without anything that would change a contender's behaviour."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LANGSMITH_", "LANGCHAIN_", "OTEL_")) and "PROXY" not in name.upper()
    }


def child_result(script: str, arguments: list[str], what: str) -> tuple[dict[str, Any], str]:
    """Run ``script`` in a child with ``arguments``: the JSON of its last line, and what it logged.
    A child that failed stops the benchmark."""
    done = subprocess.run(
        [sys.executable, os.path.abspath(script), *arguments],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


def measure(contender: str, mix: str, url: str, tag: str) -> dict[str, Any]:
    """One child's figures, with what the sink received from it, after the delivery check."""
    arguments = ["--child", contender, "--mix", mix, "--url", f"{url}/{tag}"]
    result, logged = child_result(__file__, arguments, f"{contender} on {mix}")
    received = _counts(url, tag)
    result["sent"] = received
    delivered = {
        "sdk": received["runs"],
        "exporter": received["runs"],
        "processor": received["runs"],
        "otlp": received["otlp_spans"],
        "noop": result["exported"],
        "untraced": result["spans"],
    }[contender]
    if delivered != result["spans"]:
        raise SystemExit(
            f"{contender} on {mix} delivered {delivered} of {result['spans']} runs: not measured "
            f"(sink: {received}; stderr: {logged[-2000:]})"
        )
    return result


@dataclass
class Round:
    """One round of a mix: each contender's figures, and the exporter's stages timed alone."""

    figures: dict[str, dict[str, Any]]
    stages: dict[str, float]

    def cpu(self, contender: str) -> float:
        """Process CPU seconds per run, net of the untraced workload."""
        return (self.figures[contender]["process"] - self.figures["untraced"]["process"]) / self.runs

    @property
    def runs(self) -> int:
        return int(self.figures["untraced"]["runs"])

    def own(self, contender: str) -> float:
        return self.cpu(contender) - self.cpu("noop")

    def background(self, contender: str) -> float:
        """CPU seconds per run on every thread but the application's."""
        figure = self.figures[contender]
        return float(figure["process"] - figure["thread"]) / self.runs

    def app_thread_per_run(self, contender: str) -> float:
        return float(self.figures[contender]["thread"]) / self.runs

    def app_thread(self, contender: str) -> float:
        figure = self.figures[contender]
        return float(figure["thread"]) / figure["calls"]

    def wall(self, contender: str) -> float:
        figure = self.figures[contender]
        return float(figure["wall"]) / figure["calls"]


# (what is compared, the target, how each round computes it)
TARGETS: tuple[tuple[str, float, Callable[[Round], float]], ...] = (
    ("exporter own / OTLP own", 0.75, lambda r: r.own("exporter") / r.own("otlp")),
    ("exporter own / SDK", 0.25, lambda r: r.own("exporter") / r.cpu("sdk")),
    ("processor own / SDK", 0.33, lambda r: r.own("processor") / r.cpu("sdk")),
    ("processor app-thread CPU / no-op's", 1.5, lambda r: r.app_thread("processor") / r.app_thread("noop")),
)
TOTALS: tuple[tuple[str, Callable[[Round], float]], ...] = (
    ("OTel + exporter / SDK", lambda r: r.cpu("exporter") / r.cpu("sdk")),
    ("OTel + processor / SDK", lambda r: r.cpu("processor") / r.cpu("sdk")),
    ("OTel + OTLP / SDK", lambda r: r.cpu("otlp") / r.cpu("sdk")),
)


def _ratio(rounds: Sequence[Round], compute: Callable[[Round], float]) -> str:
    values = sorted(compute(r) for r in rounds)
    return f"{statistics.median(values):.2f}x ({values[0]:.2f}..{values[-1]:.2f})"


def report(mix: str, rounds: Sequence[Round], description: str) -> list[str]:
    """The tables of one mix, as lines of Markdown; the names of targets missed, after them."""

    def median(compute: Callable[[Round], float]) -> float:
        return statistics.median(compute(r) for r in rounds)

    first = rounds[0]
    print(f"\n### {mix}: {first.runs} runs a round; {description}\n")
    print("| contender | CPU/run, net | own cost/run | app-thread CPU/call | wall/call | requests | bytes/span |")
    print("|---|---|---|---|---|---|---|")
    for contender in CONTENDERS[:-1]:
        figure = first.figures[contender]
        own = "" if contender in ("sdk", "noop") else f"{median(lambda r, c=contender: r.own(c)) * 1e3:.2f} ms"
        print(
            f"| {contender} | {median(lambda r, c=contender: r.cpu(c)) * 1e3:.2f} ms | {own} "
            f"| {median(lambda r, c=contender: r.app_thread(c)) * 1e6:.1f} us "
            f"| {median(lambda r, c=contender: r.wall(c)) * 1e6:.1f} us "
            f"| {figure['sent']['requests']} | {figure['sent']['bytes'] / figure['spans']:,.0f} |"
        )
    untraced = first.figures["untraced"]
    print(
        f"| untraced | {statistics.median(r.figures['untraced']['process'] / r.runs for r in rounds) * 1e3:.2f} ms "
        f"(whole) | | {statistics.median(r.app_thread('untraced') for r in rounds) * 1e6:.1f} us "
        f"| {statistics.median(r.wall('untraced') for r in rounds) * 1e6:.1f} us | {untraced['sent']['requests']} | |"
    )
    missed = []
    print("\n| ratio (median of rounds, spread) | value | target |")
    print("|---|---|---|")
    for name, target, compute in TARGETS:
        value = median(compute)
        verdict = "met" if value <= target else "MISSED"
        if value > target:
            missed.append(f"{mix}: {name}")
        print(f"| {name} | {_ratio(rounds, compute)} | <= {target}x {verdict} |")
    for name, compute in TOTALS:
        print(f"| {name} | {_ratio(rounds, compute)} | |")
    return missed


def _stages(mix: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--stages", "--mix", mix],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def report_stages(rounds: Sequence[Round]) -> None:
    """Where an exporter's own cost goes: on its own threads (each stage timed alone, and what the
    stages do not cover) and on the application's thread (slower beside them)."""

    def median(compute: Callable[[Round], float]) -> float:
        return statistics.median(compute(r) for r in rounds)

    found = {name: statistics.median(r.stages[name] for r in rounds) for name in rounds[0].stages}
    names = ("convert and place", "encode (orjson)", "multipart", "zstd")
    columns = {"exporter": sum(found[name] for name in names), "otlp": found["OTLP encode"]}
    threads = {c: median(lambda r, c=c: r.background(c) - r.background("noop")) for c in columns}
    app = {c: median(lambda r, c=c: r.app_thread_per_run(c) - r.app_thread_per_run("noop")) for c in columns}
    own = {c: median(lambda r, c=c: r.own(c)) for c in columns}

    def cell(value: float, contender: str) -> str:
        return f"{value * 1e3:.3f} ms ({value / own[contender]:.0%})"

    def row(name: str, values: dict[str, float]) -> None:
        print(f"| {name} | {cell(values['exporter'], 'exporter')} | {cell(values['otlp'], 'otlp')} |")

    print(
        "\n| where the own cost goes (CPU per run, medians; each stage alone over spans in memory) | exporter | OTLP |"
    )
    print("|---|---|---|")
    for name in names:
        print(f"| {name} | {cell(found[name], 'exporter')} | |")
        if name == "convert and place":
            kinds = [key for key in found if key.startswith(CONVERT_PREFIX)]
            for kind in kinds:
                label = f"- of which converting {kind.removeprefix(CONVERT_PREFIX)} runs"
                print(f"| {label} | {cell(found[kind], 'exporter')} | |")
            placing = found[name] - sum(found[kind] for kind in kinds)
            print(f"| - of which placing (the rest) | {cell(placing, 'exporter')} | |")
    print(f"| encode_spans, SerializeToString | | {cell(found['OTLP encode'], 'otlp')} |")
    row("the stages, alone", columns)
    row("measured on the exporter's threads", threads)
    print(
        f"| of which beyond the stages: sending ({found['requests']:.2f} requests/run), garbage collection, "
        f"contention | {cell(threads['exporter'] - columns['exporter'], 'exporter')} "
        f"| {cell(threads['otlp'] - columns['otlp'], 'otlp')} |"
    )
    row("the application's thread, beyond the no-op's", app)
    print(f"| own cost, end to end (median) | {own['exporter'] * 1e3:.3f} ms | {own['otlp'] * 1e3:.3f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mix", action="append", choices=workloads.MIXES, help="one mix (repeatable); all by default")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--stages", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.mix[0], args.url)))
        return
    if args.stages:
        print(json.dumps(stages(args.mix[0])))
        return

    mixes = args.mix or list(workloads.MIXES)
    sink, url = _sink()
    missed: list[str] = []
    try:
        print(f"Python {sys.version.split()[0]}, {args.rounds} rounds, contenders in turn (the order rotates)")
        for mix in mixes:
            rounds = []
            for index in range(args.rounds):
                order = CONTENDERS[index % len(CONTENDERS) :] + CONTENDERS[: index % len(CONTENDERS)]
                figures = {}
                for contender in order:
                    tag = f"{mix}-{index}-{contender}"
                    figures[contender] = measure(contender, mix, url, tag)
                # Timed in the round, beside the contenders: the machine's speed drifts over minutes.
                rounds.append(Round(figures, _stages(mix)))
            description = workloads.describe(mix, workloads.generate(mix, RUNS[mix], SEED))
            missed += report(mix, rounds, description)
            report_stages(rounds)
    finally:
        sink.stdin.close()  # type: ignore[union-attr]
        sink.wait(timeout=30)
    print()
    print("targets missed: " + ("; ".join(missed) if missed else "none"))


if __name__ == "__main__":
    main()
