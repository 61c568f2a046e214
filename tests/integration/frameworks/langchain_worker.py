"""LangChain (``langchain-openai``'s ChatOpenAI against the fake OpenAI API) under Traceloop's LangChain
instrumentation (opentelemetry-instrumentation-langchain, content on span attributes, its default), exported
through the bridge: ``python -m frameworks.langchain_worker MODE RECEIVER_URL API_KEY``, run from
tests/integration.

MODE: ``traceloop``. Three traces (and the one Traceloop emits for ``create_agent``): an LCEL chain
(prompt | model | parser, ``run_name="capital_chain"``) with max_completion_tokens and temperature; a
tool-calling agent loop (``langchain.agents.create_agent`` with one tool and a system prompt); a streamed
model call.
"""

from __future__ import annotations

import sys

from frameworks.fake_openai_agents import FakeOpenAI
from opentelemetry.instrumentation.langchain import LangchainInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_langsmith import LangSmithSpanExporter

MODE, ENDPOINT, KEY = sys.argv[1:4]
assert MODE == "traceloop", MODE
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(LangSmithSpanExporter(endpoint=ENDPOINT, api_key=KEY, project=MODE)))
LangchainInstrumentor().instrument(tracer_provider=provider)

from langchain.agents import create_agent  # noqa: E402
from langchain_core.messages import HumanMessage, SystemMessage  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402


@tool
def get_weather(city: str) -> str:
    """Weather of a city."""
    return f"sunny in {city}"


with FakeOpenAI() as api:

    def model(**options) -> ChatOpenAI:
        return ChatOpenAI(model="gpt-4o-mini", base_url=api.base_url, api_key="test-key", max_retries=0, **options)

    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("user", "Capital of {country}?")])
    chain = prompt | model(max_completion_tokens=40, temperature=0.2) | StrOutputParser()
    assert chain.invoke({"country": "France"}, config={"run_name": "capital_chain"}) == "Paris."

    agent = create_agent(
        model(max_tokens=100), tools=[get_weather], system_prompt="You are a weather bot.", name="weather_agent"
    )
    result = agent.invoke({"messages": [{"role": "user", "content": "What is the weather in Paris?"}]})
    assert result["messages"][-1].content == "It is sunny in Paris."

    chunks = model(stream_usage=True).stream(
        [SystemMessage("You are terse."), HumanMessage("say: hello streaming world")]
    )
    assert "".join(chunk.content for chunk in chunks) == "hello streaming world"
provider.shutdown()
