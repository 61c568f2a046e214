"""A separate process for the spool tests: ``python spool_worker.py MODE SPOOL_DIR ENDPOINT KEY [COUNT]``.

``write``: export COUNT spans while the endpoint is down, wait until the sender has spooled them all,
then die by SIGKILL (no shutdown, no flush). ``BATCH`` spans an export (10), each spooled on its own
once the endpoint is known to be down.
``replay``: start an exporter on the same spool and flush it; print the stats as JSON.
"""

import dataclasses
import json
import os
import signal
import sys
import time

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
        size = int(sys.argv[6]) if len(sys.argv) > 6 else 10
        for start in range(0, len(spans), size):
            exporter.export(spans[start : start + size])
            time.sleep(0.05)  # an application's pace: later exports find the endpoint known down
        deadline = time.monotonic() + 10
        while exporter.stats().runs_spooled < len(spans) and time.monotonic() < deadline:
            time.sleep(0.01)
        print(json.dumps(dataclasses.asdict(exporter.stats())), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        flushed = exporter.force_flush(timeout_millis=20_000)
        print(json.dumps({"flushed": flushed, **dataclasses.asdict(exporter.stats())}), flush=True)
        exporter.shutdown()


if __name__ == "__main__":
    main()
