"""Strands Agents (``strands.Agent`` with ``OpenAIModel`` against the fake OpenAI API), exported through the
bridge: ``python -m frameworks.strands_worker MODE RECEIVER_URL API_KEY``, run from tests/integration.

MODE: ``default`` (no opt-in: messages in span events) or ``latest`` (``OTEL_SEMCONV_STABILITY_OPT_IN=
gen_ai_latest_experimental``: messages in ``gen_ai.client.inference.operation.details`` span events). One
trace: an agent with a system prompt and one tool answers in two model calls, each streamed (Strands always
streams). The tracer provider is set up the documented way: ``StrandsTelemetry()`` creates one and makes it
the global provider, and the bridge is added to it.
"""

from __future__ import annotations

import os
import sys

MODE, ENDPOINT, KEY = sys.argv[1:4]
if MODE == "latest":
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"

from frameworks.fake_openai_agents import FakeOpenAI  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from strands import Agent, tool  # noqa: E402
from strands.models.openai import OpenAIModel  # noqa: E402
from strands.telemetry import StrandsTelemetry  # noqa: E402

from otel_langsmith import LangSmithSpanExporter  # noqa: E402

telemetry = StrandsTelemetry()
exporter = LangSmithSpanExporter(endpoint=ENDPOINT, api_key=KEY, project=f"strands-{MODE}")
telemetry.tracer_provider.add_span_processor(BatchSpanProcessor(exporter))


@tool
def get_weather(city: str) -> str:
    """Weather of a city.

    Args:
        city: the city name
    """
    return f"sunny in {city}"


with FakeOpenAI() as api:
    model = OpenAIModel(
        client_args={"base_url": api.base_url, "api_key": "test-key"},
        model_id="gpt-4o-mini",
        params={"max_tokens": 100, "temperature": 0.2},
    )
    agent = Agent(
        model=model,
        tools=[get_weather],
        system_prompt="You are a weather bot.",
        name="weather_agent",
        callback_handler=None,
    )
    assert str(agent("What is the weather in Paris?")).strip() == "It is sunny in Paris."
telemetry.tracer_provider.shutdown()
