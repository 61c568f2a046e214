"""pydantic-ai with its built-in instrumentation (no logfire), its OpenAI model against the fake OpenAI API,
exported through the bridge: ``python -m frameworks.pydantic_ai_worker MODE RECEIVER_URL API_KEY``, run from
tests/integration.

MODE: the instrumentation's data-format version, ``v2``, ``v5`` (the default: no ``version=`` given) or
``v6``; or, with the default version, each model call traced twice: ``double-openinference`` adds
OpenInference's OpenAI instrumentation, ``double-openai-v2`` the OpenTelemetry OpenAI (v2) instrumentation
(content on span attributes). The client's span then sits under pydantic-ai's chat span.

Two traces: a tool-calling run (agent -> chat -> tool -> chat) with system instructions, max_tokens and
temperature, then a streamed run that needs no tool.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings

MODE, ENDPOINT, KEY = sys.argv[1:4]
if MODE == "double-openai-v2":
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_only"

from frameworks.fake_openai_agents import FakeOpenAI  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.capabilities.instrumentation import Instrumentation  # noqa: E402
from pydantic_ai.models.instrumented import InstrumentationSettings  # noqa: E402
from pydantic_ai.models.openai import OpenAIChatModel  # noqa: E402
from pydantic_ai.providers.openai import OpenAIProvider  # noqa: E402

from otel_langsmith import LangSmithSpanExporter  # noqa: E402

warnings.simplefilter("ignore", DeprecationWarning)  # versions 2 to 4 are deprecated

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(LangSmithSpanExporter(endpoint=ENDPOINT, api_key=KEY, project=MODE)))
version = {"v2": {"version": 2}, "v6": {"version": 6}}.get(MODE, {})
settings = InstrumentationSettings(tracer_provider=provider, **version)
if MODE == "double-openinference":
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)
elif MODE == "double-openai-v2":
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OpenAIV2Instrumentor

    OpenAIV2Instrumentor().instrument(tracer_provider=provider)


async def streamed(agent: Agent) -> str:
    async with agent.run_stream("say: hello streaming world") as result:
        return [text async for text in result.stream_output(debounce_by=None)][-1]


with FakeOpenAI() as api:
    model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(base_url=api.base_url, api_key="test-key"))
    agent = Agent(
        model,
        name="weather_agent",
        instructions="You are a terse weather assistant.",
        model_settings={"max_tokens": 100, "temperature": 0.2},
        capabilities=[Instrumentation(settings=settings)],
    )

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Weather of a city."""
        return f"sunny in {city}"

    assert agent.run_sync("What is the weather in Paris?").output == "It is sunny in Paris."
    assert asyncio.run(streamed(agent)) == "hello streaming world"
provider.shutdown()
