"""LLM runs from real instrumentation libraries: the OpenAI client against a local fake of the API,
each library in a process of its own, exported through the bridge to the local receiver."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import run_child
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_langsmith.testing import LangSmithReceiver

WORKER = Path(__file__).parent / "genai_worker.py"


def run_worker(mode: str, receiver) -> dict[str, dict]:
    completed = run_child([sys.executable, str(WORKER), mode, receiver.url, receiver.api_key], cwd=str(WORKER.parent))
    assert completed.returncode == 0, completed.stderr
    assert receiver.rejected == []
    runs = sorted(receiver.runs.values(), key=lambda r: r["start_time"])
    assert len(runs) == 3, [r["name"] for r in runs]
    return {"plain": runs[0], "tools": runs[1], "stream": runs[2]}


def assert_plain_call(run: dict, *, with_system: bool = True) -> None:
    assert run["run_type"] == "llm"
    messages = run["inputs"]["messages"]
    expected = [{"role": "user", "content": "Capital of France?"}]
    if with_system:
        expected.insert(0, {"role": "system", "content": "You are terse."})
    assert [{"role": m["role"], "content": m["content"]} for m in messages] == expected
    (choice,) = run["outputs"]["choices"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"] == "Paris."
    assert choice["finish_reason"] == "stop"
    usage = run["outputs"]["usage_metadata"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (24, 2, 26)
    metadata = run["extra"]["metadata"]
    assert metadata["ls_provider"] == "openai"
    assert metadata["ls_model_name"] == "gpt-4o-mini-2024-07-18"
    assert metadata["usage_metadata"] == usage


def assert_tool_call(run: dict) -> None:
    (choice,) = run["outputs"]["choices"]
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert call["function"]["arguments"].replace(" ", "") == '{"city":"Paris"}'
    assert choice["finish_reason"] == "tool_calls"


def test_openai_v2_with_content_on_span_attributes(langsmith_receiver):
    runs = run_worker("ov2-span", langsmith_receiver)
    assert_plain_call(runs["plain"])
    assert runs["plain"]["extra"]["metadata"]["ls_temperature"] == 0.2
    assert runs["plain"]["extra"]["metadata"]["ls_max_tokens"] == 50
    assert "gen_ai.input.messages" not in runs["plain"]["extra"]["metadata"]  # not repeated
    assert_tool_call(runs["tools"])
    assert runs["stream"]["outputs"]["choices"][0]["message"]["content"].strip() == "hello streaming world"


def test_openai_v2_with_content_as_log_records(langsmith_receiver):
    runs = run_worker("ov2-logs", langsmith_receiver)
    assert_plain_call(runs["plain"])
    assert_tool_call(runs["tools"])
    assert runs["stream"]["outputs"]["choices"][0]["message"]["content"].strip() == "hello streaming world"


def test_openinference_openai(langsmith_receiver):
    runs = run_worker("openinference", langsmith_receiver)
    assert_plain_call(runs["plain"])
    details = runs["plain"]["outputs"]["usage_metadata"]
    assert details["input_token_details"]["cache_read"] == 4
    assert details["output_token_details"]["reasoning"] == 1
    assert_tool_call(runs["tools"])
    assert runs["tools"]["inputs"]["tools"][0]["function"]["name"] == "get_weather"
    assert "input.value" not in runs["plain"]["extra"]["metadata"]
    stream = runs["stream"]
    (first,) = [e for e in stream["events"] if e["name"] == "new_token"]
    assert stream["start_time"] < first["time"] < stream["end_time"]


def test_traceloop_openai(langsmith_receiver):
    runs = run_worker("traceloop", langsmith_receiver)
    assert_plain_call(runs["plain"])
    assert runs["plain"]["outputs"]["usage_metadata"]["input_token_details"]["cache_read"] == 4
    assert_tool_call(runs["tools"])
    assert runs["tools"]["inputs"]["tools"][0]["function"]["name"] == "get_weather"
    stream = runs["stream"]
    (first,) = [e for e in stream["events"] if e["name"] == "new_token"]
    assert stream["start_time"] < first["time"] < stream["end_time"]


@pytest.mark.parametrize("mode", ["ov2-span"])
def test_every_llm_run_names_its_model_for_cost(langsmith_receiver, mode):
    runs = run_worker(mode, langsmith_receiver)
    for run in runs.values():
        assert run["extra"]["metadata"]["ls_model_type"] == "chat"
        assert run["extra"]["metadata"]["ls_invocation_params"]["model"] == "gpt-4o-mini"


def test_an_openinference_instrumented_langchain_pipeline(langsmith_receiver):
    class Atlas(BaseRetriever):
        def _get_relevant_documents(self, query, *, run_manager=None):
            return [Document(page_content="Paris is the capital of France.", metadata={"source": "atlas"})]

    @tool
    def get_weather(city: str) -> str:
        """Weather of a city."""
        return f"sunny in {city}"

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(langsmith_receiver.exporter()))
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        prompt = ChatPromptTemplate.from_messages([("system", "Context: {context}"), ("human", "{question}")])
        pipeline = (
            {"context": Atlas(), "question": RunnableLambda(lambda q: q)}
            | prompt
            | FakeListChatModel(responses=["Paris."])
        )
        assert pipeline.invoke("capital of France?").content == "Paris."
        assert get_weather.invoke({"city": "Paris"}) == "sunny in Paris"
    finally:
        instrumentor.uninstrument()
        provider.shutdown()

    assert langsmith_receiver.rejected == [] and langsmith_receiver.problems() == []
    runs = {r["name"]: r for r in langsmith_receiver.runs.values()}
    chain = runs["RunnableSequence"]
    assert chain["run_type"] == "chain" and chain["inputs"] == {"input": "capital of France?"}
    retriever = runs["Atlas"]
    assert retriever["run_type"] == "retriever" and retriever["parent_run_id"] is not None
    assert retriever["outputs"]["documents"] == [
        {"page_content": "Paris is the capital of France.", "metadata": {"source": "atlas"}}
    ]
    assert runs["ChatPromptTemplate"]["run_type"] == "prompt"
    llm = runs["FakeListChatModel"]
    assert llm["run_type"] == "llm" and llm["parent_run_id"] == chain["id"]
    assert [m["role"] for m in llm["inputs"]["messages"]] == ["system", "user"]
    assert llm["inputs"]["messages"][1]["content"] == "capital of France?"
    assert llm["outputs"]["choices"][0]["message"]["content"] == "Paris."
    weather = runs["get_weather"]
    assert weather["run_type"] == "tool" and "parent_run_id" not in weather
    assert weather["inputs"] == {"input": "Paris"} and weather["outputs"] == {"output": "sunny in Paris"}


def langsmith_sdk_runs(mode: str) -> dict[str, dict]:
    with LangSmithReceiver() as receiver:
        worker = Path(__file__).parent / "langsmith_worker.py"
        completed = run_child([sys.executable, str(worker), mode, receiver.url, receiver.api_key])
        assert completed.returncode == 0, completed.stderr
        assert receiver.rejected == [] and receiver.problems() == []
        return {run["name"]: run for run in receiver.runs.values()}


def comparable(run: dict, names: dict[str, dict]) -> dict:
    # What the environment or the transport adds differs by nature: the SDK records its own
    # LANGSMITH_* variables, the bridge the OTel ids and resource.
    metadata = {
        key: value
        for key, value in run["extra"]["metadata"].items()
        if not key.startswith(("LANGSMITH_", "OTEL_", "telemetry.", "service.")) and key != "revision_id"
    }
    parent = next((name for name, other in names.items() if other["id"] == run.get("parent_run_id")), None)
    return {
        "name": run["name"],
        "run_type": run["run_type"],
        "inputs": run.get("inputs"),
        "outputs": run.get("outputs"),
        "tags": sorted(run.get("tags", [])),
        "metadata": metadata,
        "parent": parent,
        "project": run.get("session_name"),
    }


def test_langsmith_sdk_spans_through_the_bridge_match_the_sdk_itself():
    direct = langsmith_sdk_runs("direct")
    bridged = langsmith_sdk_runs("otel")
    assert sorted(direct) == sorted(bridged) == ["answer", "lookup"]
    for name in direct:
        assert comparable(bridged[name], bridged) == comparable(direct[name], direct)
    assert comparable(bridged["lookup"], bridged)["parent"] == "answer"
