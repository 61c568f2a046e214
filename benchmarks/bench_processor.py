"""The span processor's cost on the application's thread, per span (start + end).

    make bench        # or: python benchmarks/bench_processor.py [--spans N] [--rounds R]

Against the usual setup in the same process: a ``BatchSpanProcessor`` with an exporter that does
nothing. Both run with their background threads live (sending to a local receiver for ours), so
the time includes what those threads take from the application under the GIL. Reported: median
microseconds per span over several rounds, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_langsmith import LangSmithSpanProcessor
from otel_langsmith.testing import LangSmithReceiver


class NoOpExporter(SpanExporter):
    def export(self, spans):  # type: ignore[no-untyped-def]
        return SpanExportResult.SUCCESS


def per_span_us(processor: SpanProcessor, spans: int) -> float:
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    attributes = {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 42}
    started = time.perf_counter()
    for _ in range(spans // 3):
        with tracer.start_as_current_span("agent"):
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes):
                pass
            with tracer.start_as_current_span("tool"):
                pass
    elapsed = time.perf_counter() - started
    provider.shutdown()
    return elapsed / (spans // 3 * 3) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=6_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    baseline, ours = [], []
    with LangSmithReceiver() as receiver:
        for _ in range(args.rounds):
            baseline.append(per_span_us(BatchSpanProcessor(NoOpExporter()), args.spans))
            processor = LangSmithSpanProcessor(endpoint=receiver.url, api_key=receiver.api_key)
            ours.append(per_span_us(processor, args.spans))
            receiver.clear()
    base, mine = statistics.median(baseline), statistics.median(ours)
    print(f"application-thread cost per span (start + end), median of {args.rounds} rounds of {args.spans:,} spans")
    print(f"  BatchSpanProcessor + no-op exporter: {base:6.2f} us")
    print(f"  LangSmithSpanProcessor:              {mine:6.2f} us")
    print(f"  ratio: {mine / base:.2f}x")


if __name__ == "__main__":
    main()
