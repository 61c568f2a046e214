"""The README's recipes, run as written: its code blocks, in a process of their own, against the
local receiver and a loopback fake of the provider's API."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from helpers import child_environment, run_child

README = Path(__file__).parents[2] / "README.md"
HERE = Path(__file__).parent


def recipe(title: str) -> tuple[str, dict[str, str]]:
    """The Python block of a README recipe, and the variables its run line sets."""
    text = README.read_text()
    section = text[text.index(f"### {title}\n") :]
    section = section[: section.index("\n### ", 1)]
    code = textwrap.dedent(re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1))
    run_line = re.search(r"`((?:[A-Z_]+=\S+ )+)python app\.py`", section)
    variables = dict(item.split("=", 1) for item in run_line.group(1).split()) if run_line else {}
    return code, variables


def run_app(code: str, variables: dict[str, str], app: str, receiver, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(code + "\n" + textwrap.dedent(app))
    environment = child_environment(
        LANGSMITH_ENDPOINT=receiver.url,
        LANGSMITH_API_KEY=receiver.api_key,
        PYTHONPATH=str(HERE),  # the fake provider API
        **variables,
    )
    completed = run_child([sys.executable, str(script)], env=environment, cwd=str(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert receiver.rejected == [] and receiver.problems() == []


def test_the_openai_recipe(langsmith_receiver, tmp_path):
    code, variables = recipe("OpenAI")
    assert variables == {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only",
    }
    app = """
        import openai
        from fake_openai import FakeOpenAI
        from opentelemetry import trace

        with FakeOpenAI() as api:
            client = openai.OpenAI(base_url=api.base_url, api_key="test-key")
            question = [{"role": "user", "content": "Capital of France?"}]
            client.chat.completions.create(model="gpt-4o-mini", messages=question)
        trace.get_tracer_provider().shutdown()
    """
    run_app(code, variables, app, langsmith_receiver, tmp_path)
    (run,) = langsmith_receiver.runs.values()
    assert run["run_type"] == "llm" and run["session_name"] == "my-app"
    assert run["inputs"]["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert run["outputs"]["choices"][0]["message"]["content"] == "Paris."
    assert run["outputs"]["usage_metadata"]["total_tokens"] == 26
    assert run["extra"]["metadata"]["ls_model_name"] == "gpt-4o-mini-2024-07-18"


def test_the_langchain_recipe(langsmith_receiver, tmp_path):
    code, variables = recipe("LangChain")
    assert variables == {}
    app = """
        from langchain_core.language_models.fake_chat_models import FakeListChatModel
        from langchain_core.prompts import ChatPromptTemplate
        from opentelemetry import trace

        chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | FakeListChatModel(responses=["Paris."])
        assert chain.invoke({"question": "Capital of France?"}).content == "Paris."
        trace.get_tracer_provider().shutdown()
    """
    run_app(code, variables, app, langsmith_receiver, tmp_path)
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert runs["RunnableSequence"]["run_type"] == "chain" and runs["RunnableSequence"]["session_name"] == "my-app"
    model = runs["FakeListChatModel"]
    assert model["run_type"] == "llm" and model["parent_run_id"] == runs["RunnableSequence"]["id"]
    assert model["inputs"]["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert model["outputs"]["choices"][0]["message"]["content"] == "Paris."
    assert runs["ChatPromptTemplate"]["run_type"] == "prompt"


def test_the_pydantic_ai_recipe(langsmith_receiver, tmp_path):
    code, variables = recipe("pydantic-ai")
    assert variables == {}
    app = """
        from fake_openai import FakeOpenAI
        from opentelemetry import trace
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        with FakeOpenAI() as api:
            model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(base_url=api.base_url, api_key="test-key"))
            agent = Agent(model, instructions="Answer in one word.")
            assert agent.run_sync("Capital of France?").output == "Paris."
        trace.get_tracer_provider().shutdown()
    """
    run_app(code, variables, app, langsmith_receiver, tmp_path)
    runs = sorted(langsmith_receiver.runs.values(), key=lambda run: run["dotted_order"])
    agent, chat = runs
    assert agent["run_type"] == "chain" and agent["session_name"] == "my-app"
    assert agent["inputs"]["messages"][-1] == {"role": "user", "content": "Capital of France?"}
    assert agent["outputs"]["output"] == "Paris."
    assert chat["run_type"] == "llm" and chat["parent_run_id"] == agent["id"]
    assert chat["inputs"]["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert chat["outputs"]["choices"][0]["message"]["content"] == "Paris."
    assert chat["outputs"]["usage_metadata"]["total_tokens"] == 26
