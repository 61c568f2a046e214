"""A separate process for the spool tests: ``python spool_worker.py MODE SPOOL_DIR ENDPOINT KEY [COUNT]``.

``write``: export COUNT spans while the endpoint is down, then die by SIGKILL (no shutdown, no flush).
``replay``: start an exporter on the same spool and flush it; print the stats as JSON.
"""

import json
import os
import signal
import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_langsmith import LangSmithSpanExporter, RetryPolicy


def main() -> None:
    mode, spool_dir, endpoint, key = sys.argv[1:5]
    exporter = LangSmithSpanExporter(
        endpoint=endpoint,
        api_key=key,
        spool_dir=spool_dir,
        export_timeout=0.3,
        retry_policy=RetryPolicy(initial_backoff=0.05, max_backoff=0.2),
    )
    if mode == "write":
        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer("spool")
        for index in range(int(sys.argv[5])):
            with tracer.start_as_current_span(f"spooled-{index}"):
                pass
        spans = memory.get_finished_spans()
        for start in range(0, len(spans), 10):
            exporter.export(spans[start : start + 10])
        print(json.dumps(exporter.stats()), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        flushed = exporter.force_flush(timeout_millis=20_000)
        print(json.dumps({"flushed": flushed, **exporter.stats()}), flush=True)
        exporter.shutdown()


if __name__ == "__main__":
    main()
