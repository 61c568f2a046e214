"""One instrumentation library, the real OpenAI client, the fake OpenAI API, exported through the
bridge: ``python genai_worker.py MODE RECEIVER_URL API_KEY``. A process per library, because
instrumentations patch the client globally and read their settings once.

MODE: ``ov2-span`` (opentelemetry-instrumentation-openai-v2, content on span attributes),
``ov2-logs`` (the same, content as log records), ``openinference``, ``traceloop``.
"""

from __future__ import annotations

import os
import sys

from fake_openai import FakeOpenAI

MODE, ENDPOINT, KEY = sys.argv[1:4]
if MODE == "ov2-span":
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_only"
elif MODE == "ov2-logs":
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"

import openai  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from otel_langsmith import LangSmithSpanExporter  # noqa: E402

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(LangSmithSpanExporter(endpoint=ENDPOINT, api_key=KEY, project=MODE)))

if MODE.startswith("ov2"):
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider

    from otel_langsmith import LangSmithLogProcessor

    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(LangSmithLogProcessor())
    OpenAIInstrumentor().instrument(tracer_provider=provider, logger_provider=logger_provider)
elif MODE == "openinference":
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)
else:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]

with FakeOpenAI() as api:
    client = openai.OpenAI(base_url=api.base_url, api_key="test-key")
    client.chat.completions.create(
        model="gpt-4o-mini",
        temperature=0.2,
        max_tokens=50,
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Capital of France?"}],
    )
    client.chat.completions.create(
        model="gpt-4o-mini", tools=TOOLS, messages=[{"role": "user", "content": "weather in Paris?"}]
    )
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "say: hello streaming world"}],
    )
    for _ in stream:
        pass
provider.shutdown()
