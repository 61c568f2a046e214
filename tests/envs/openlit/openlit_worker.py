"""OpenLIT on the real OpenAI client, against the suite's fake OpenAI API, exported through the
bridge: ``python openlit_worker.py RECEIVER_URL API_KEY``. Runs in the ``openlit`` environment
(tests/envs/openlit/requirements.txt); the test puts tests/integration on PYTHONPATH for the fake.

Calls, in order: a plain chat; a tool call and its result sent back (two calls); a streamed chat;
embeddings of two texts.

OpenLIT reuses the SDK providers it finds set globally, so ours are set before ``openlit.init()``.
Nothing reaches the network: ``pricing_json`` is a local file (otherwise init() downloads one),
metrics are off. Tool definitions are only in OpenLIT's
``gen_ai.client.inference.operation.details`` log records, hence the log processor.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fake_openai import FakeOpenAI
from opentelemetry import _logs, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_langsmith import LangSmithLogProcessor, LangSmithSpanExporter

ENDPOINT, KEY = sys.argv[1:3]
PRICING = Path(__file__).with_name("pricing.json")

provider = TracerProvider()
provider.add_span_processor(
    BatchSpanProcessor(LangSmithSpanExporter(endpoint=ENDPOINT, api_key=KEY, project="openlit"))
)
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(LangSmithLogProcessor())
trace.set_tracer_provider(provider)
_logs.set_logger_provider(logger_provider)

import openlit  # noqa: E402 - after the providers: init() reuses the global ones

openlit.init(application_name="openlit-worker", environment="test", pricing_json=str(PRICING), disable_metrics=True)

import openai  # noqa: E402

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
    client = openai.OpenAI(base_url=api.base_url, api_key="test-key", max_retries=0)
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Capital of France?"}],
    )

    messages = [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    first = client.chat.completions.create(model="gpt-4o-mini", tools=TOOLS, messages=messages)
    call = first.choices[0].message
    # What applications send back: the assistant's message as the API returned it, then the result.
    messages.append(call.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.tool_calls[0].id, "content": "sunny, 21C"})
    client.chat.completions.create(model="gpt-4o-mini", tools=TOOLS, messages=messages)

    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "say: hello streaming world"}],
    )
    for _ in stream:
        pass

    client.embeddings.create(model="text-embedding-3-small", input=["hello world", "second text"])

provider.shutdown()
logger_provider.shutdown()
