"""Frameworks whose dependencies conflict with the suite's (OpenLIT needs openai<3; pydantic-ai 1.x
cannot share an environment with pydantic-ai 2.x), each in an environment of its own that the suite
creates: a venv per ``tests/envs/<name>/requirements.txt`` plus this project, cached in
``.venv-envs/`` and reused while its inputs are unchanged. A worker drives the framework against
the fake OpenAI API (tests/integration/fake_openai.py) and exports through the bridge to a
receiver in this process; the tests read the runs it stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as metadata_version
from pathlib import Path
from typing import Any

import pytest
from helpers import child_environment, run_child

from otel_langsmith.testing import LangSmithReceiver

REPO = Path(__file__).resolve().parents[2]
ENVS = REPO / "tests" / "envs"
CACHE = REPO / ".venv-envs"
FAKES = Path(__file__).resolve().parent  # fake_openai.py, shared with the suite's own environment
# A cold install is a minute on a small machine; the first test of an environment pays it.
INSTALL_TIMEOUT = 270.0
pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 120)

# -- environments --------------------------------------------------------------------------------


def _project_dependencies() -> bytes:
    """What the editable install brings besides the project itself."""
    text = (REPO / "pyproject.toml").read_bytes()
    try:
        import tomllib  # noqa: PLC0415 - Python 3.11+
    except ImportError:  # 3.10: any change to pyproject.toml rebuilds
        return text
    return json.dumps(tomllib.loads(text.decode())["project"]["dependencies"]).encode()


def _key(name: str) -> str:
    """Changes with what the environment is made of: its requirements, the project's dependencies,
    the interpreter, and where the repository is (the editable install points there)."""
    digest = hashlib.sha256((ENVS / name / "requirements.txt").read_bytes())
    digest.update(_project_dependencies())
    digest.update(f"{os.path.realpath(sys.executable)} {sys.version} {REPO}".encode())
    return digest.hexdigest()[:12]


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """One process builds an environment; the others (tox -p, two checkouts' runs) wait for it."""
    with open(lock, "w") as handle:
        try:
            import fcntl  # noqa: PLC0415 - POSIX only
        except ImportError:
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _bootstrap(python: Path) -> list[list[str]]:
    """Commands that give the new venv a current pip: the pip a venv starts with cannot resolve
    these requirement sets. This interpreter's own pip (22.3+: ``--python``) installs it directly,
    several seconds faster than ensurepip's old pip and setuptools followed by an upgrade."""
    try:
        version = tuple(int(part) for part in metadata_version("pip").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        version = (0, 0)
    if version >= (22, 3):
        return [[sys.executable, "-m", "pip", "--python", str(python), "install", "--upgrade", "pip"]]
    return [[str(python), "-m", "ensurepip"], [str(python), "-m", "pip", "install", "--upgrade", "pip"]]


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def framework_python(name: str) -> Path:
    """The python of environment ``name``: built on first use (a venv from this interpreter, a
    current pip, then ``tests/envs/<name>/requirements.txt`` and this project installed), reused
    while complete. The marker is written last: a build cut short is started over. A failed install
    fails the test with pip's output."""
    home = CACHE / f"{name}-{_key(name)}"
    python = home / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    marker = home / "complete.json"
    CACHE.mkdir(exist_ok=True)
    with _exclusive(CACHE / f"{name}.lock"):
        if marker.is_file() and python.exists():
            return python
        shutil.rmtree(home, ignore_errors=True)
        environment = child_environment(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        environment.pop("PYTHONPATH", None)
        environment.pop("PYTHONHOME", None)
        steps = [
            [sys.executable, "-m", "venv", "--without-pip", str(home)],
            *_bootstrap(python),
            [str(python), "-m", "pip", "install", "-r", str(ENVS / name / "requirements.txt"), "-e", str(REPO)],
        ]
        started = time.monotonic()
        for args in steps:
            remaining = INSTALL_TIMEOUT - (time.monotonic() - started)
            try:
                completed = subprocess.run(
                    args,
                    env=environment,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=max(remaining, 1.0),
                    check=False,
                )
            except subprocess.TimeoutExpired as timeout:
                pytest.fail(
                    f"environment {name}: {' '.join(args)} did not finish within {INSTALL_TIMEOUT:.0f} s:\n"
                    + _text(timeout.output),
                    pytrace=False,
                )
            if completed.returncode != 0:
                pytest.fail(
                    f"environment {name}: {' '.join(args)} exited {completed.returncode}:\n{completed.stdout}",
                    pytrace=False,
                )
        seconds = time.monotonic() - started
        for stale in CACHE.iterdir():  # this environment's earlier builds
            if stale != home and re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{12}}", stale.name):
                shutil.rmtree(stale, ignore_errors=True)
        marker.write_text(json.dumps({"install_seconds": round(seconds, 1), "python": sys.version}))
    return python


def run_worker(python: Path, worker: Path, receiver: LangSmithReceiver, *args: str) -> None:
    completed = run_child(
        [str(python), str(worker), *args, receiver.url, receiver.api_key or ""],
        env=child_environment(PYTHONPATH=str(FAKES)),
        cwd=str(worker.parent),
    )
    assert completed.returncode == 0, completed.stderr


@pytest.fixture(scope="module")
def openlit_python() -> Path:
    return framework_python("openlit")


@pytest.fixture(scope="module")
def pydantic_ai1_python() -> Path:
    return framework_python("pydantic_ai1")


# -- what the runs should say ---------------------------------------------------------------------

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PARIS_CALL = {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}


def instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    """A message with its tool calls' arguments parsed (they must be JSON strings, as OpenAI's are)
    and without keys OpenAI leaves null (``content`` of a tool-calling assistant)."""
    message = {key: value for key, value in message.items() if value is not None}
    if "tool_calls" in message:
        calls = []
        for call in message["tool_calls"]:
            arguments = call["function"]["arguments"]
            assert isinstance(arguments, str), f"arguments must be a JSON string: {call}"
            calls.append({**call, "function": {**call["function"], "arguments": json.loads(arguments)}})
        message["tool_calls"] = calls
    return message


# A run leaves out what it does not have: these read it as empty, for a failure that shows a value.
def inputs(run: dict[str, Any]) -> dict[str, Any]:
    return run.get("inputs") or {}


def outputs(run: dict[str, Any]) -> dict[str, Any]:
    return run.get("outputs") or {}


def metadata(run: dict[str, Any]) -> dict[str, Any]:
    return (run.get("extra") or {}).get("metadata") or {}


def assert_messages(run: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    assert [comparable(m) for m in inputs(run).get("messages", [])] == expected


def assert_choice(run: dict[str, Any], message: dict[str, Any], finish_reason: str) -> None:
    choices = [{**choice, "message": comparable(choice["message"])} for choice in outputs(run).get("choices", [])]
    assert choices == [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}]


def assert_tools(run: dict[str, Any], tools: list[dict[str, Any]]) -> None:
    assert inputs(run).get("tools") == [{"type": "function", "function": tool} for tool in tools]


def assert_model_call(run: dict[str, Any], *, usage: tuple[int, int, int]) -> None:
    """What every chat run carries: its type, usage as the fake reported it, the model for pricing."""
    assert run["run_type"] == "llm"
    reported = outputs(run).get("usage_metadata", {})
    assert (reported.get("input_tokens"), reported.get("output_tokens"), reported.get("total_tokens")) == usage
    model = {key: metadata(run).get(key) for key in ("ls_provider", "ls_model_name", "ls_model_type")}
    assert model == {"ls_provider": "openai", "ls_model_name": "gpt-4o-mini-2024-07-18", "ls_model_type": "chat"}


def assert_clean_delivery(receiver: LangSmithReceiver) -> None:
    assert receiver.rejected == []
    assert receiver.problems() == []


# -- OpenLIT ----------------------------------------------------------------------------------------

PRICING = json.loads((ENVS / "openlit" / "pricing.json").read_text())
CHAT_PRICE = PRICING["chat"]["gpt-4o-mini"]
# The fake's usage: 24 prompt and 2 completion tokens a chat call, 3 tokens an embeddings call.
CHAT_COST = 24 / 1000 * CHAT_PRICE["promptPrice"] + 2 / 1000 * CHAT_PRICE["completionPrice"]
EMBEDDINGS_COST = 3 / 1000 * PRICING["embeddings"]["text-embedding-3-small"]
OPENLIT_CALLS = ["chat", "tool_call", "tool_result", "stream", "embeddings"]


@pytest.fixture(scope="module")
def openlit(openlit_python) -> Iterator[LangSmithReceiver]:
    """The receiver, once the OpenLIT worker has made its five calls and exited."""
    with LangSmithReceiver() as receiver:
        run_worker(openlit_python, ENVS / "openlit" / "openlit_worker.py", receiver)
        yield receiver


def openlit_runs(receiver: LangSmithReceiver) -> dict[str, dict[str, Any]]:
    """The worker's calls by name: each is the root of a trace of its own, in the order made."""
    roots = receiver.roots()
    assert len(roots) == len(OPENLIT_CALLS), receiver.format_tree()
    return dict(zip(OPENLIT_CALLS, roots, strict=True))


def keys_holding(cost: float, tree: Any, prefix: str = "") -> list[str]:
    """Where in ``tree`` (dotted keys, nested objects included) the number ``cost`` is."""
    if isinstance(tree, dict):
        return [found for key, value in tree.items() for found in keys_holding(cost, value, f"{prefix}{key}.")]
    if isinstance(tree, (int, float)) and not isinstance(tree, bool) and tree == pytest.approx(cost):
        return [prefix[:-1]]
    return []


def test_openlit_calls_arrive_as_one_trace_each(openlit):
    assert_clean_delivery(openlit)
    runs = openlit_runs(openlit)
    # Below each call, only the HTTP request OpenLIT's bundled httpx instrumentation records; the
    # bridge's own requests to the receiver are not traced.
    for run in runs.values():
        assert [child["name"] for child in openlit.children(run["id"])] == ["POST"], openlit.format_tree()
    assert len(openlit.runs) == 2 * len(runs), openlit.format_tree()


@pytest.mark.parametrize("call", ["chat", "tool_call", "tool_result", "stream"])
def test_openlit_chat_calls_give_llm_runs_with_usage_model_and_cost(openlit, call):
    run = openlit_runs(openlit)[call]
    assert_model_call(run, usage=(24, 2, 26))
    assert keys_holding(CHAT_COST, metadata(run)) != [], metadata(run)


def test_openlit_plain_chat(openlit):
    run = openlit_runs(openlit)["chat"]
    assert_messages(
        run, [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Capital of France?"}]
    )
    assert "tools" not in inputs(run)
    assert_choice(run, {"content": "Paris."}, "stop")


def test_openlit_tool_call_round_trip(openlit):
    runs = openlit_runs(openlit)
    question = [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    call = runs["tool_call"]
    assert_messages(call, question)
    assert_tools(call, [WEATHER_TOOL])  # from OpenLIT's log record: its spans have no tool definitions
    assert_choice(call, {"tool_calls": [PARIS_CALL]}, "tool_calls")

    result = runs["tool_result"]
    # The request also held the assistant's tool call, between the question and the result: OpenLIT
    # records no assistant message without text (nor any message's tool_calls), so no conversion
    # can bring it back. Everything OpenLIT did record is there, in order.
    assert_messages(result, [*question, {"role": "tool", "tool_call_id": "call_w1", "content": "sunny, 21C"}])
    assert_tools(result, [WEATHER_TOOL])
    assert_choice(result, {"content": "Paris."}, "stop")


def test_openlit_streamed_call_marks_its_first_token(openlit):
    run = openlit_runs(openlit)["stream"]
    assert_messages(run, [{"role": "user", "content": "say: hello streaming world"}])
    assert_choice(run, {"content": "hello streaming world "}, "stop")
    # gen_ai.server.time_to_first_token, in seconds from the start.
    new_tokens = [event for event in run.get("events") or [] if event["name"] == "new_token"]
    assert len(new_tokens) == 1, f"the run's events: {run.get('events')}"
    (first,) = new_tokens
    assert instant(run["start_time"]) < instant(first["time"]) < instant(run["end_time"])


def test_openlit_embeddings(openlit):
    run = openlit_runs(openlit)["embeddings"]
    assert run["run_type"] == "embedding"
    assert inputs(run) == {"input": ["hello world", "second text"]}
    assert metadata(run).get("ls_model_type") != "chat"
    assert keys_holding(EMBEDDINGS_COST, metadata(run)) != [], metadata(run)


# -- pydantic-ai 1.x --------------------------------------------------------------------------------

AGENT_QUESTION = [
    # Given as instructions=: version 1 records them as a system message, version 2 apart from the
    # messages (gen_ai.system_instructions).
    {"role": "system", "content": "You are a terse weather assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
]
AGENT_TOOL = {  # from the function's signature and docstring
    "name": "get_weather",
    "description": "Weather of a city.",
    "parameters": {
        "additionalProperties": False,
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "type": "object",
    },
}


@pytest.fixture(scope="module", params=["v1-attributes", "v1-logs", "v2"])
def pydantic_ai1(request, pydantic_ai1_python) -> Iterator[LangSmithReceiver]:
    """The receiver, once a pydantic-ai 1.x agent instrumented in this mode has answered."""
    with LangSmithReceiver() as receiver:
        worker = ENVS / "pydantic_ai1" / "pydantic_ai1_worker.py"
        run_worker(pydantic_ai1_python, worker, receiver, request.param)
        yield receiver


def agent_runs(receiver: LangSmithReceiver) -> dict[str, dict[str, Any]]:
    """The agent run, and below it, in the order they started: the call that asks for the tool,
    the tool, the call that answers."""
    roots = receiver.roots()
    assert len(roots) == 1, receiver.format_tree()
    children = receiver.children(roots[0]["id"])
    assert len(children) == 3, receiver.format_tree()
    return dict(zip(["agent", "tool_call", "tool", "answer"], [*roots, *children], strict=True))


def test_pydantic_ai1_agent_run_is_one_trace(pydantic_ai1):
    assert_clean_delivery(pydantic_ai1)
    runs = agent_runs(pydantic_ai1)
    assert [runs[name]["run_type"] for name in ("tool_call", "tool", "answer")] == ["llm", "tool", "llm"]
    assert len(pydantic_ai1.runs) == 4


def test_pydantic_ai1_agent_run_holds_the_conversation_not_the_usage(pydantic_ai1):
    agent = agent_runs(pydantic_ai1)["agent"]
    assert "What is the weather in Paris?" in json.dumps(inputs(agent)), inputs(agent)
    assert "Paris." in json.dumps(outputs(agent)), outputs(agent)
    # pydantic-ai 1.x writes the calls' summed gen_ai.usage.* on the agent span too: the chat runs
    # below count them already.
    assert "usage_metadata" not in outputs(agent)
    assert "usage_metadata" not in metadata(agent)


def test_pydantic_ai1_chat_runs(pydantic_ai1):
    runs = agent_runs(pydantic_ai1)
    call, answer = runs["tool_call"], runs["answer"]
    for run in (call, answer):
        assert_model_call(run, usage=(24, 2, 26))
        assert_tools(run, [AGENT_TOOL])
    assert_messages(call, AGENT_QUESTION)
    assert_choice(call, {"tool_calls": [PARIS_CALL]}, "tool_calls")
    assert_messages(
        answer,
        [
            *AGENT_QUESTION,
            {"role": "assistant", "tool_calls": [PARIS_CALL]},
            {"role": "tool", "tool_call_id": "call_w1", "content": "sunny in Paris"},
        ],
    )
    assert_choice(answer, {"content": "Paris."}, "stop")


def test_pydantic_ai1_tool_run(pydantic_ai1):
    tool = agent_runs(pydantic_ai1)["tool"]
    assert tool["run_type"] == "tool"
    assert inputs(tool) == {"city": "Paris"}
    assert outputs(tool) == {"output": "sunny in Paris"}
