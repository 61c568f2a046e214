"""Memory with LangSmith unreachable: the exporter's buffers stay under their configured ceiling.

    make bench        # or: python benchmarks/bench_memory.py [--spans N] [--queue-mib M]

A sustained load of LLM-sized spans (2 KB of content each) goes through a BatchSpanProcessor while
the endpoint refuses connections, so every batch ends in the bounded retry queue. The same load
through the same processor with an exporter that does nothing is the baseline, in the same process.
Reported: peak Python heap (tracemalloc) of each, the difference, and the ceiling it must stay under
(retry queue + pending-parent buffer + 50 MiB).
"""

from __future__ import annotations

import argparse
import gc
import json
import socket
import time
import tracemalloc

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_langsmith import LangSmithSpanExporter, RetryPolicy

MIB = 1024 * 1024


class NoOpExporter(SpanExporter):
    def export(self, spans):  # type: ignore[no-untyped-def]
        return SpanExportResult.SUCCESS


def closed_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def load(exporter: SpanExporter, spans: int) -> tuple[float, float]:
    """Peak traced memory (MiB) while ``spans`` spans go through, and the seconds it took."""
    gc.collect()
    tracemalloc.reset_peak()
    start_memory = tracemalloc.get_traced_memory()[0]
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=8192, schedule_delay_millis=200))
    tracer = provider.get_tracer("bench")
    content = json.dumps(
        {"messages": [{"role": "user", "content": "q" * 1000}, {"role": "assistant", "content": "a" * 1000}]}
    )
    started = time.perf_counter()
    for index in range(spans):
        with tracer.start_as_current_span("agent") as root:
            root.set_attribute("input.value", content)
            with tracer.start_as_current_span("chat gpt-4o-mini") as llm:
                llm.set_attribute("gen_ai.prompt", content)
                llm.set_attribute("gen_ai.usage.input_tokens", index)
        if index % 2000 == 0:
            time.sleep(0.01)  # let the processor's thread keep up, as an application's pauses would
    provider.shutdown()
    elapsed = time.perf_counter() - started
    peak = (tracemalloc.get_traced_memory()[1] - start_memory) / MIB
    return peak, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=20_000, help="traces of two spans each")
    parser.add_argument("--queue-mib", type=int, default=16)
    args = parser.parse_args()
    tracemalloc.start()

    baseline, baseline_seconds = load(NoOpExporter(), args.spans)
    exporter = LangSmithSpanExporter(
        endpoint=closed_endpoint(),
        api_key="bench",
        max_queue_bytes=args.queue_mib * MIB,
        max_pending_bytes=16 * MIB,
        retry_policy=RetryPolicy(initial_backoff=0.05, max_backoff=0.5),
    )
    peak, seconds = load(exporter, args.spans)
    stats = exporter.stats()
    ceiling = args.queue_mib + 16 + 50
    print(f"{2 * args.spans:,} spans ({args.spans:,} traces) with the endpoint down, median-free single pass")
    print(f"  baseline (BatchSpanProcessor + no-op exporter): peak {baseline:7.1f} MiB in {baseline_seconds:.1f} s")
    print(f"  otel-langsmith, retry queue {args.queue_mib} MiB:        peak {peak:7.1f} MiB in {seconds:.1f} s")
    print(f"  difference: {peak - baseline:.1f} MiB; ceiling (queue + pending + 50 MiB): {ceiling} MiB")
    kept, dropped = stats.queued_runs, stats.runs_dropped
    print(f"  runs kept for retry at the end: {kept:,}; dropped (counted, logged): {dropped:,}")
    print(f"  ratio peak / baseline: {peak / baseline:.2f}x")
    print("  ceiling holds" if peak - baseline <= ceiling else "  CEILING EXCEEDED")


if __name__ == "__main__":
    main()
