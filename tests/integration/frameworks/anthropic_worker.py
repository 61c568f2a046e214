"""The ``anthropic`` client under an instrumentation library, against the fake Anthropic API, exported
through the bridge: ``python -m frameworks.anthropic_worker MODE RECEIVER_URL API_KEY``, run from
tests/integration.

MODE: ``openinference`` (openinference-instrumentation-anthropic) or ``traceloop``
(opentelemetry-instrumentation-anthropic, content on span attributes, its default). Four calls, each a
trace of its own: a plain call with a system prompt and max_tokens; a tool-use round trip in two calls
(tool_use, then the tool_result and the answer) with a tool definition; a streamed call
(``messages.stream()``). anthropic 2.x takes no temperature.
"""

from __future__ import annotations

import sys

from fake_anthropic import FakeAnthropic
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_langsmith import LangSmithSpanExporter

MODE, ENDPOINT, KEY = sys.argv[1:4]

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(LangSmithSpanExporter(endpoint=ENDPOINT, api_key=KEY, project=MODE)))
if MODE == "openinference":
    from openinference.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument(tracer_provider=provider)
else:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument(tracer_provider=provider)

import anthropic  # noqa: E402

MODEL = "claude-sonnet-4-5"
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]

with FakeAnthropic() as api:
    client = anthropic.Anthropic(base_url=api.base_url, api_key="test-key", max_retries=0)
    client.messages.create(
        model=MODEL,
        max_tokens=50,
        system="You are terse.",
        messages=[{"role": "user", "content": "Capital of France?"}],
    )

    messages: list = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.messages.create(
        model=MODEL, max_tokens=200, system="You are a weather bot.", tools=TOOLS, messages=messages
    )
    (call,) = [block for block in first.content if block.type == "tool_use"]
    messages += [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny in Paris"}]},
    ]
    second = client.messages.create(
        model=MODEL, max_tokens=200, system="You are a weather bot.", tools=TOOLS, messages=messages
    )
    assert second.content[0].text == "It is sunny in Paris."

    with client.messages.stream(
        model=MODEL,
        max_tokens=50,
        system="You are terse.",
        messages=[{"role": "user", "content": "say: hello streaming world"}],
    ) as stream:
        assert "".join(stream.text_stream) == "hello streaming world"
provider.shutdown()
