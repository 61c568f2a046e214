"""A pydantic-ai 1.x agent that calls a tool, against the suite's fake OpenAI API, exported through
the bridge: ``python pydantic_ai1_worker.py MODE RECEIVER_URL API_KEY``. Runs in the
``pydantic_ai1`` environment (tests/envs/pydantic_ai1/requirements.txt); the test puts
tests/integration on PYTHONPATH for the fake.

MODE: ``v1-attributes`` (instrumentation format version 1, messages in the chat span's ``events``
attribute), ``v1-logs`` (version 1, messages as log records), ``v2`` (the 1.x default format).
A process per mode: the instrumentation settings are the agent's, the OpenAI client is cached.
"""

from __future__ import annotations

import sys

from fake_openai import FakeOpenAI
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import Instrumentation
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from otel_langsmith import LangSmithLogProcessor, LangSmithSpanExporter

MODE, ENDPOINT, KEY = sys.argv[1:4]

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(LangSmithSpanExporter(endpoint=ENDPOINT, api_key=KEY, project=MODE)))
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(LangSmithLogProcessor())

if MODE == "v1-attributes":
    settings = InstrumentationSettings(tracer_provider=provider, version=1, event_mode="attributes")
elif MODE == "v1-logs":
    settings = InstrumentationSettings(
        tracer_provider=provider, version=1, event_mode="logs", logger_provider=logger_provider
    )
else:
    settings = InstrumentationSettings(tracer_provider=provider, version=2)

with FakeOpenAI() as api:
    model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(base_url=api.base_url, api_key="test-key"))
    agent = Agent(
        model,
        name="weather_agent",
        instructions="You are a terse weather assistant.",
        capabilities=[Instrumentation(settings)],
    )

    @agent.tool
    def get_weather(ctx: RunContext[None], city: str) -> str:
        """Weather of a city."""
        return f"sunny in {city}"

    result = agent.run_sync("What is the weather in Paris?")
    assert result.output == "Paris.", result.output

provider.shutdown()
logger_provider.shutdown()
