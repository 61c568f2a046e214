"""The OpenAI Responses API (``POST /v1/responses``) under an instrumentation, against the fake OpenAI API,
exported through the bridge: ``python -m frameworks.openai_responses_worker MODE RECEIVER_URL API_KEY``, run
from tests/integration.

MODE:
- ``pydantic-ai``: pydantic-ai's ``OpenAIResponsesModel`` with its built-in instrumentation (the default data
  format), two traces: a tool-calling agent run (agent -> chat -> tool -> chat) with instructions, max_tokens
  and temperature, then a streamed run that needs no tool.
- ``openinference``: the ``openai`` client's ``responses.create`` under openinference-instrumentation-openai,
  three calls, each a trace of its own: one with instructions, a tool offered, max_output_tokens and
  temperature, that gets the function call; the same with the function call and its ``function_call_output``
  sent back, that gets the answer; a streamed one (``stream=True``).

The OpenTelemetry OpenAI (v2) instrumentation 2.4b0 has no mode: it ships extractors and stream wrappers for
the Responses API but wraps only ``chat.completions.create`` and ``embeddings.create``, so a Responses call
makes no span under it.
"""

from __future__ import annotations

import asyncio
import sys

import openai
from frameworks.fake_openai_agents import FakeOpenAI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_langsmith import LangSmithSpanExporter

MODE, ENDPOINT, KEY = sys.argv[1:4]

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(LangSmithSpanExporter(endpoint=ENDPOINT, api_key=KEY, project=MODE)))
if MODE == "pydantic-ai":
    from pydantic_ai import Agent
    from pydantic_ai.capabilities.instrumentation import Instrumentation
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider
elif MODE == "openinference":
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)
else:
    sys.exit(f"unknown mode {MODE!r}")


def agent_runs(base_url: str) -> None:
    model = OpenAIResponsesModel("gpt-4o-mini", provider=OpenAIProvider(base_url=base_url, api_key="test-key"))
    agent = Agent(
        model,
        name="weather_agent",
        instructions="You are a terse weather assistant.",
        model_settings={"max_tokens": 100, "temperature": 0.2},
        capabilities=[Instrumentation(settings=InstrumentationSettings(tracer_provider=provider))],
    )

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Weather of a city."""
        return f"sunny in {city}"

    async def streamed() -> str:
        async with agent.run_stream("say: hello streaming world") as result:
            return [text async for text in result.stream_output(debounce_by=None)][-1]

    assert agent.run_sync("What is the weather in Paris?").output == "It is sunny in Paris."
    assert asyncio.run(streamed()) == "hello streaming world"


TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": False,
    }
]


def client_calls(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="test-key", max_retries=0)
    ask: list = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.responses.create(
        model="gpt-4o-mini",
        instructions="You are a weather bot.",
        input=ask,
        tools=TOOLS,
        max_output_tokens=200,
        temperature=0.2,
    )
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert (call.call_id, call.arguments) == ("call_w1", '{"city": "Paris"}')
    second = client.responses.create(
        model="gpt-4o-mini",
        instructions="You are a weather bot.",
        input=[
            *ask,
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny in Paris"},
        ],
        tools=TOOLS,
        max_output_tokens=200,
        temperature=0.2,
    )
    assert second.output_text == "It is sunny in Paris."

    stream = client.responses.create(
        model="gpt-4o-mini",
        instructions="You are terse.",
        input=[{"role": "user", "content": "say: hello streaming world"}],
        max_output_tokens=50,
        stream=True,
    )
    deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
    assert "".join(deltas) == "hello streaming world"


with FakeOpenAI() as api:
    if MODE == "pydantic-ai":
        agent_runs(api.base_url)
    else:
        client_calls(api.base_url)
provider.shutdown()
