"""A long-running job traced with the plain OpenTelemetry API, for the live span processor.

    OTEL_TRACES_EXPORTER=langsmith_live OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \\
    LANGSMITH_API_KEY=... opentelemetry-instrument python examples/live_app.py

With the live span processor, the job's run shows in LangSmith as in progress while it works
(after ``OTEL_EXPORTER_LANGSMITH_LIVE_AFTER`` seconds), and each step as soon as it ends.
"""

import os
import time

from opentelemetry import trace

tracer = trace.get_tracer("examples.live_app")


def main() -> None:
    seconds = float(os.environ.get("LIVE_APP_SECONDS", "3"))
    with tracer.start_as_current_span("long-job", attributes={"input.value": "nightly batch"}) as job:
        for step in range(3):
            with tracer.start_as_current_span(f"step-{step}"):
                time.sleep(seconds / 3)
        job.set_attribute("output.value", "done")


if __name__ == "__main__":
    main()
