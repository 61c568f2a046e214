"""The three workloads of ``bench_e2e.py``, and how each way of tracing records them.

Content is generated from a seed before anything is measured (same seed, same content, in every
process), so every contender traces the same calls with the same texts. A run of a mix is one trace:

- agent: an ``invoke_agent`` root; model calls (``chat``) each carrying the whole conversation so
  far (system prompt, request parameters, token counts), 1 to 40 steps a run; between them tool
  calls (``execute_tool``), each with the HTTP client call it makes under it;
- service: an HTTP server request of about 20 plain calls (database, cache, HTTP client) and one
  short model call;
- rag: a root, a retriever returning 20 documents, a prompt rendered from a template, a model call.

The application (``drive``) calls an :class:`Instrumentation`: ``Untraced`` (calls only),
``OTelInstrumentation`` (spans with attributes written as an instrumentation writes them: GenAI
semantic-convention keys, JSON strings for messages, OpenInference keys for documents and prompt
templates) or ``LangSmithInstrumentation`` (``@traceable`` functions of the matching run types with
the same content: messages in the inputs, ``usage_metadata`` in the outputs, as LangSmith's docs
show). The application holds its messages as it would send them to the model (OpenAI chat format);
converting them to the conventions' JSON is the instrumentation's work, and counted as such.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

MIXES = ("agent", "service", "rag")

MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
PARAMS = {"temperature": 0.2, "max_tokens": 1024, "top_p": 0.95}
AGENT = "travel-agent"
MAX_STEPS = 40

_WORDS = (
    "the weather forecast city temperature tomorrow rain wind humidity report station sensor hourly daily "
    "average maximum minimum coastal northern region pressure front cloud cover visibility advisory travel "
    "flight airport delay booking hotel price availability guest review rating distance walking museum "
    "opening hours ticket discount family children customer order invoice refund shipment warehouse parcel "
    "tracking courier address payment card balance account subscription renewal plan upgrade support agent "
    "question answer policy document section clause contract summary paragraph reference source chapter "
    "version release change request approval deadline meeting schedule calendar reminder budget estimate "
    "quarter revenue margin growth forecast market segment product feature roadmap priority backlog issue"
).split()
_TOOLS = ("get_forecast", "search_flights", "find_hotels", "convert_currency")
_HOSTS = {
    "get_forecast": "weather.example.com",
    "search_flights": "flights.example.com",
    "find_hotels": "hotels.example.com",
    "convert_currency": "fx.example.com",
}
_TABLES = ("orders", "customers", "order_items", "payments", "shipments", "inventory")
_SERVICES = ("pricing.internal", "inventory.internal", "auth.internal", "shipping.internal")
_TEMPLATE = (
    "Answer the question using only the context below. Cite the documents you use by id.\n\n"
    "Context:\n{context}\n\nQuestion: {question}\nAnswer:"
)
_RAG_SYSTEM = "You are a careful assistant. Say when the context does not answer the question."


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def _tokens(*texts: str) -> int:
    return sum(len(text) for text in texts) // 4 + 3 * len(texts)


@dataclass(slots=True)
class Response:
    """What the model answered: its message as the application gets it (OpenAI chat format)."""

    id: str
    message: dict[str, Any]
    finish_reason: str
    input_tokens: int
    output_tokens: int


@dataclass(slots=True)
class HttpRequest:
    method: str
    url: str
    host: str
    status: int


@dataclass(slots=True)
class Tool:
    name: str
    call_id: str
    arguments: dict[str, Any]
    arguments_json: str  # as the model wrote them
    result: dict[str, Any]
    result_json: str  # as the application hands it back to the model
    request: HttpRequest
    message: dict[str, Any]  # the tool message appended to the conversation


@dataclass(slots=True)
class Step:
    response: Response
    tool: Tool | None


@dataclass(slots=True)
class AgentRun:
    conversation_id: str
    question: str
    system: dict[str, Any]  # the system message
    user: dict[str, Any]
    steps: list[Step]
    answer: str

    @property
    def calls(self) -> int:
        return 1 + len(self.steps) + 2 * (len(self.steps) - 1)


@dataclass(slots=True)
class Chat:
    messages: list[dict[str, Any]]
    response: Response


@dataclass(slots=True)
class DbQuery:
    operation: str
    table: str
    statement: str
    rows: int


@dataclass(slots=True)
class CacheCall:
    command: str
    key: str
    hit: bool


@dataclass(slots=True)
class ServiceRequest:
    method: str
    route: str
    path: str
    client: str
    user_agent: str
    status: int
    calls_made: list[DbQuery | CacheCall | HttpRequest | Chat]

    @property
    def calls(self) -> int:
        return 1 + len(self.calls_made)


@dataclass(slots=True)
class Document:
    id: str
    content: str
    score: float
    metadata: dict[str, Any]


@dataclass(slots=True)
class Prompt:
    template: str
    version: str
    variables: dict[str, str]
    rendered: str


@dataclass(slots=True)
class RagQuery:
    question: str
    documents: list[Document]
    prompt: Prompt
    chat: Chat
    answer: str

    @property
    def calls(self) -> int:
        return 4


Run = AgentRun | ServiceRequest | RagQuery


def _response(rng: random.Random, message: dict[str, Any], finish: str, prompt: int, output: int) -> Response:
    return Response(f"chatcmpl-{rng.getrandbits(64):016x}", message, finish, prompt, output)


def _agent_run(rng: random.Random, index: int, system: dict[str, Any]) -> AgentRun:
    question = _text(rng, 20, 60)
    user = {"role": "user", "content": question}
    steps: list[Step] = []
    prompt_tokens = _tokens(system["content"], question)
    count = rng.randint(1, MAX_STEPS)
    answer = ""
    for step in range(count):
        if step == count - 1:
            answer = _text(rng, 40, 90)
            message = {"role": "assistant", "content": answer}
            steps.append(Step(_response(rng, message, "stop", prompt_tokens, _tokens(answer)), None))
            break
        name = rng.choice(_TOOLS)
        call_id = f"call_{rng.getrandbits(48):012x}"
        arguments = {"query": _text(rng, 3, 8), "city": rng.choice(_WORDS), "days": rng.randint(1, 14)}
        arguments_json = json.dumps(arguments)
        result = {"summary": _text(rng, 30, 70), "items": [_text(rng, 4, 10) for _ in range(rng.randint(1, 4))]}
        result_json = json.dumps(result)
        host = _HOSTS[name]
        request = HttpRequest("GET", f"https://{host}/v2/{name}?q={rng.getrandbits(32):08x}", host, 200)
        tool_call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments_json}}
        message = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
        response = _response(rng, message, "tool_calls", prompt_tokens, _tokens(arguments_json))
        tool_message = {"role": "tool", "tool_call_id": call_id, "content": result_json}
        steps.append(
            Step(response, Tool(name, call_id, arguments, arguments_json, result, result_json, request, tool_message))
        )
        prompt_tokens += _tokens(arguments_json, result_json)
    return AgentRun(f"conversation-{index}", question, system, user, steps, answer)


def _service_request(rng: random.Random) -> ServiceRequest:
    order = rng.randint(10_000, 99_999)
    calls: list[DbQuery | CacheCall | HttpRequest | Chat] = []
    for _ in range(rng.randint(17, 23)):
        kind = rng.random()
        if kind < 0.5:
            table = rng.choice(_TABLES)
            operation = rng.choice(("SELECT", "SELECT", "SELECT", "UPDATE", "INSERT"))
            columns = ", ".join(rng.sample(("id", "status", "total", "created_at", "customer_id", "sku", "qty"), 4))
            if operation == "SELECT":
                statement = f"SELECT {columns} FROM {table} WHERE order_id = $1 AND status = ANY($2) LIMIT 50"
            elif operation == "UPDATE":
                statement = f"UPDATE {table} SET status = $1, updated_at = now() WHERE id = $2"
            else:
                statement = f"INSERT INTO {table} ({columns}) VALUES ($1, $2, $3, $4)"
            calls.append(DbQuery(operation, table, statement, rng.randint(0, 50)))
        elif kind < 0.8:
            key = f"{rng.choice(('order', 'customer', 'price', 'session'))}:{rng.randint(1, 10**6)}"
            calls.append(CacheCall(rng.choice(("GET", "GET", "SET")), key, rng.random() < 0.7))
        else:
            host = rng.choice(_SERVICES)
            calls.append(HttpRequest("GET", f"http://{host}/v1/{rng.choice(_WORDS)}/{order}", host, 200))
    system = {"role": "system", "content": "Summarise the order status for the customer in one sentence."}
    question = _text(rng, 10, 25)
    answer = _text(rng, 12, 30)
    messages = [system, {"role": "user", "content": question}]
    reply = {"role": "assistant", "content": answer}
    response = _response(rng, reply, "stop", _tokens(system["content"], question), _tokens(answer))
    calls.insert(rng.randint(len(calls) // 2, len(calls)), Chat(messages, response))
    return ServiceRequest(
        "GET",
        "/api/orders/{order_id}",
        f"/api/orders/{order}",
        f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        200,
        calls,
    )


def _rag_query(rng: random.Random) -> RagQuery:
    question = _text(rng, 10, 30)
    documents = [
        Document(
            f"doc-{rng.getrandbits(32):08x}",
            _text(rng, 60, 120),
            round(1.0 - rank * 0.03 - rng.random() * 0.02, 4),
            {"source": f"kb/{rng.choice(_WORDS)}/{rng.choice(_WORDS)}.md", "chunk": rng.randint(0, 40)},
        )
        for rank in range(20)
    ]
    context = "\n\n".join(f"[{document.id}] {document.content}" for document in documents[:5])
    variables = {"context": context, "question": question}
    rendered = _TEMPLATE.format(**variables)
    answer = _text(rng, 40, 100)
    messages = [{"role": "system", "content": _RAG_SYSTEM}, {"role": "user", "content": rendered}]
    reply = {"role": "assistant", "content": answer}
    response = _response(rng, reply, "stop", _tokens(_RAG_SYSTEM, rendered), _tokens(answer))
    prompt = Prompt(_TEMPLATE, "v3", variables, rendered)
    return RagQuery(question, documents, prompt, Chat(messages, response), answer)


def generate(mix: str, runs: int, seed: int) -> list[Run]:
    """``runs`` runs of ``mix``, the same for the same seed."""
    rng = random.Random(f"{mix}:{seed}")
    if mix == "agent":
        system = {"role": "system", "content": _text(rng, 100, 140)}
        return [_agent_run(rng, index, system) for index in range(runs)]
    if mix == "service":
        return [_service_request(rng) for _ in range(runs)]
    if mix == "rag":
        return [_rag_query(rng) for _ in range(runs)]
    raise ValueError(f"unknown mix {mix!r}")


def describe(mix: str, runs: Sequence[Run]) -> str:
    """One line on what a mix's runs hold."""
    calls = [run.calls for run in runs]
    line = f"{sum(calls) / len(runs):.1f} calls (spans) a run, {min(calls)}..{max(calls)}"
    if mix == "agent":
        steps = [len(run.steps) for run in runs if isinstance(run, AgentRun)]
        line += f"; {min(steps)}..{max(steps)} model calls a run, {sum(steps) / len(steps):.1f} on average"
        longest = max(
            len(json.dumps([run.system, run.user, *(s.tool.message for s in run.steps if s.tool)]))
            for run in runs
            if isinstance(run, AgentRun)
        )
        line += f"; the longest conversation {longest:,} chars of JSON"
    elif mix == "rag":
        sizes = [sum(len(d.content) for d in run.documents) for run in runs if isinstance(run, RagQuery)]
        line += f"; 20 documents of {sum(sizes) / len(sizes) / 20:,.0f} chars on average"
    return line


class Instrumentation:
    """The calls the application makes, traced or not. This one traces nothing."""

    def agent(self, run: AgentRun, body: Callable[[], str]) -> str:
        return body()

    def chat(self, chat: Chat) -> Response:
        return chat.response

    def tool(self, tool: Tool, body: Callable[[], object]) -> str:
        body()
        return tool.result_json

    def http(self, request: HttpRequest) -> int:
        return request.status

    def server(self, request: ServiceRequest, body: Callable[[], None]) -> int:
        body()
        return request.status

    def db(self, query: DbQuery) -> int:
        return query.rows

    def cache(self, call: CacheCall) -> bool:
        return call.hit

    def rag(self, query: RagQuery, body: Callable[[], str]) -> str:
        return body()

    def retrieve(self, query: RagQuery) -> list[Document]:
        return query.documents

    def prompt(self, prompt: Prompt) -> str:
        return prompt.rendered


Untraced = Instrumentation


def _agent(run: AgentRun, traced: Instrumentation) -> str:
    def body() -> str:
        conversation = [run.user]
        for step in run.steps:
            response = traced.chat(Chat([run.system, *conversation], step.response))
            conversation.append(response.message)
            tool = step.tool
            if tool is None:
                break
            traced.tool(tool, partial(traced.http, tool.request))
            conversation.append(tool.message)
        return run.answer

    return traced.agent(run, body)


def _service(request: ServiceRequest, traced: Instrumentation) -> int:
    def body() -> None:
        for call in request.calls_made:
            if isinstance(call, DbQuery):
                traced.db(call)
            elif isinstance(call, CacheCall):
                traced.cache(call)
            elif isinstance(call, HttpRequest):
                traced.http(call)
            else:
                traced.chat(call)

    return traced.server(request, body)


def _rag(query: RagQuery, traced: Instrumentation) -> str:
    def body() -> str:
        traced.retrieve(query)
        traced.prompt(query.prompt)
        traced.chat(query.chat)
        return query.answer

    return traced.rag(query, body)


def drive(run: Run, traced: Instrumentation) -> object:
    """What the application does for one run, through ``traced``."""
    if isinstance(run, AgentRun):
        return _agent(run, traced)
    if isinstance(run, ServiceRequest):
        return _service(run, traced)
    return _rag(run, traced)


# -- OpenTelemetry, as an instrumentation writes it -------------------------------------------------


def _parts(message: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat message as a GenAI semantic-convention message."""
    role = message["role"]
    if role == "tool":
        part = {"type": "tool_call_response", "id": message["tool_call_id"], "response": message["content"]}
        return {"role": "tool", "parts": [part]}
    parts: list[dict[str, Any]] = []
    if message.get("content"):
        parts.append({"type": "text", "content": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call["function"]
        parts.append(
            {"type": "tool_call", "id": call["id"], "name": function["name"], "arguments": function["arguments"]}
        )
    return {"role": role, "parts": parts}


class OTelInstrumentation(Instrumentation):
    """Spans as the GenAI, HTTP and database instrumentations write them (and OpenInference's for the
    retriever and the prompt template)."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry.trace import SpanKind

        self._span = tracer.start_as_current_span
        self._client = SpanKind.CLIENT
        self._server = SpanKind.SERVER

    def agent(self, run: AgentRun, body: Callable[[], str]) -> str:
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": "openai",
            "gen_ai.agent.name": AGENT,
            "gen_ai.conversation.id": run.conversation_id,
            "gen_ai.request.model": MODEL,
            "gen_ai.input.messages": json.dumps([_parts(run.user)]),
        }
        with self._span(f"invoke_agent {AGENT}", attributes=attributes) as span:
            answer = body()
            output = {"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}
            span.set_attribute("gen_ai.output.messages", json.dumps([output]))
        return answer

    def chat(self, chat: Chat) -> Response:
        system, *messages = chat.messages
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": MODEL,
            "gen_ai.request.temperature": PARAMS["temperature"],
            "gen_ai.request.max_tokens": PARAMS["max_tokens"],
            "gen_ai.request.top_p": PARAMS["top_p"],
            "server.address": "api.openai.com",
            "server.port": 443,
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": system["content"]}]),
            "gen_ai.input.messages": json.dumps([_parts(message) for message in messages]),
        }
        with self._span(f"chat {MODEL}", kind=self._client, attributes=attributes) as span:
            response = chat.response
            output = _parts(response.message)
            output["finish_reason"] = response.finish_reason
            span.set_attributes(
                {
                    "gen_ai.response.id": response.id,
                    "gen_ai.response.model": RESPONSE_MODEL,
                    "gen_ai.response.finish_reasons": (response.finish_reason,),
                    "gen_ai.usage.input_tokens": response.input_tokens,
                    "gen_ai.usage.output_tokens": response.output_tokens,
                    "gen_ai.output.messages": json.dumps([output]),
                }
            )
        return response

    def tool(self, tool: Tool, body: Callable[[], object]) -> str:
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool.name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": tool.call_id,
            "gen_ai.tool.call.arguments": tool.arguments_json,
        }
        with self._span(f"execute_tool {tool.name}", attributes=attributes) as span:
            body()
            span.set_attribute("gen_ai.tool.call.result", tool.result_json)
        return tool.result_json

    def http(self, request: HttpRequest) -> int:
        attributes = {
            "http.request.method": request.method,
            "url.full": request.url,
            "server.address": request.host,
            "server.port": 443,
            "network.protocol.version": "1.1",
        }
        with self._span(request.method, kind=self._client, attributes=attributes) as span:
            span.set_attribute("http.response.status_code", request.status)
        return request.status

    def server(self, request: ServiceRequest, body: Callable[[], None]) -> int:
        attributes = {
            "http.request.method": request.method,
            "http.route": request.route,
            "url.path": request.path,
            "url.scheme": "https",
            "server.address": "orders.example.com",
            "server.port": 443,
            "client.address": request.client,
            "user_agent.original": request.user_agent,
            "network.protocol.version": "1.1",
        }
        with self._span(f"{request.method} {request.route}", kind=self._server, attributes=attributes) as span:
            body()
            span.set_attribute("http.response.status_code", request.status)
        return request.status

    def db(self, query: DbQuery) -> int:
        attributes = {
            "db.system.name": "postgresql",
            "db.namespace": "shop",
            "db.operation.name": query.operation,
            "db.collection.name": query.table,
            "db.query.text": query.statement,
            "server.address": "db.internal",
            "server.port": 5432,
        }
        with self._span(f"{query.operation} {query.table}", kind=self._client, attributes=attributes) as span:
            span.set_attribute("db.response.returned_rows", query.rows)
        return query.rows

    def cache(self, call: CacheCall) -> bool:
        attributes = {
            "db.system.name": "redis",
            "db.operation.name": call.command,
            "db.query.text": f"{call.command} {call.key}",
            "server.address": "cache.internal",
            "server.port": 6379,
        }
        with self._span(call.command, kind=self._client, attributes=attributes):
            pass
        return call.hit

    def rag(self, query: RagQuery, body: Callable[[], str]) -> str:
        attributes = {
            "openinference.span.kind": "CHAIN",
            "input.value": json.dumps({"question": query.question}),
            "input.mime_type": "application/json",
        }
        with self._span("rag_query", attributes=attributes) as span:
            answer = body()
            span.set_attributes(
                {"output.value": json.dumps({"answer": answer}), "output.mime_type": "application/json"}
            )
        return answer

    def retrieve(self, query: RagQuery) -> list[Document]:
        attributes = {
            "openinference.span.kind": "RETRIEVER",
            "input.value": query.question,
            "input.mime_type": "text/plain",
        }
        with self._span("retrieve", attributes=attributes) as span:
            documents = query.documents
            found: dict[str, Any] = {}
            for index, document in enumerate(documents):
                prefix = f"retrieval.documents.{index}.document."
                found[prefix + "id"] = document.id
                found[prefix + "content"] = document.content
                found[prefix + "score"] = document.score
                found[prefix + "metadata"] = json.dumps(document.metadata)
            span.set_attributes(found)
        return documents

    def prompt(self, prompt: Prompt) -> str:
        variables = json.dumps(prompt.variables)
        attributes = {
            "openinference.span.kind": "PROMPT",
            "llm.prompt_template.template": prompt.template,
            "llm.prompt_template.version": prompt.version,
            "llm.prompt_template.variables": variables,
            "input.value": variables,
            "input.mime_type": "application/json",
        }
        with self._span("format_prompt", attributes=attributes) as span:
            span.set_attributes({"output.value": prompt.rendered, "output.mime_type": "text/plain"})
        return prompt.rendered


# -- the LangSmith SDK ------------------------------------------------------------------------------

_LLM_METADATA = {
    "ls_provider": "openai",
    "ls_model_name": MODEL,
    "ls_temperature": PARAMS["temperature"],
    "ls_max_tokens": PARAMS["max_tokens"],
}


class LangSmithInstrumentation(Instrumentation):
    """Functions under ``@traceable`` of the matching run types, as LangSmith's documentation shows:
    a model call's messages and parameters are its arguments, its answer with ``usage_metadata`` its
    return value. The client and project come from the environment (``LANGSMITH_*``).

    What a traced function returns (the model's answer) or runs (an agent's steps, a tool's HTTP
    call) is pushed on ``_prepared`` just before the call, so that its arguments hold only what a
    real application would pass: the function pops it on entry, before anything nested pushes.
    """

    def __init__(self) -> None:
        from langsmith import traceable

        prepared: list[Any] = []
        self._prepared = prepared

        def then() -> Any:
            done = prepared.pop()
            return done() if callable(done) else done

        @traceable(name=AGENT, run_type="chain", metadata={"agent_name": AGENT})
        def agent(question: str) -> dict[str, Any]:
            return {"answer": then()}

        @traceable(name=f"chat {MODEL}", run_type="llm", metadata=_LLM_METADATA)
        def chat(messages: list[dict[str, Any]], model: str, temperature: float, max_tokens: int, top_p: float) -> Any:
            return then()

        @traceable(run_type="tool")
        def tool(**arguments: Any) -> dict[str, Any]:
            return {"output": then()}

        @traceable(run_type="chain")
        def http(method: str, url: str, host: str) -> dict[str, Any]:
            return {"status_code": then()}

        @traceable(run_type="chain")
        def server(method: str, route: str, path: str, client: str, user_agent: str) -> dict[str, Any]:
            return {"status_code": then()}

        @traceable(run_type="chain")
        def db(system: str, database: str, table: str, statement: str) -> dict[str, Any]:
            return {"rows": then()}

        @traceable(run_type="chain")
        def cache(command: str, key: str) -> dict[str, Any]:
            return {"hit": then()}

        @traceable(name="rag_query", run_type="chain")
        def rag(question: str) -> dict[str, Any]:
            return {"answer": then()}

        @traceable(name="retrieve", run_type="retriever")
        def retrieve(query: str) -> Any:
            return then()

        @traceable(name="format_prompt", run_type="prompt")
        def prompt(**variables: str) -> Any:
            return then()

        self._agent, self._chat, self._tool, self._http, self._server = agent, chat, tool, http, server
        self._db, self._cache, self._rag, self._retrieve, self._prompt = db, cache, rag, retrieve, prompt

    def agent(self, run: AgentRun, body: Callable[[], str]) -> str:
        self._prepared.append(body)
        return self._agent(run.question, langsmith_extra={"metadata": {"conversation_id": run.conversation_id}})[
            "answer"
        ]

    def chat(self, chat: Chat) -> Response:
        response = chat.response
        usage = {
            "input_tokens": response.input_tokens,
            "output_tokens": response.output_tokens,
            "total_tokens": response.input_tokens + response.output_tokens,
        }
        choice = {"index": 0, "message": response.message, "finish_reason": response.finish_reason}
        self._prepared.append(
            {"id": response.id, "model": RESPONSE_MODEL, "choices": [choice], "usage_metadata": usage}
        )
        self._chat(chat.messages, MODEL, **PARAMS)
        return response

    def tool(self, tool: Tool, body: Callable[[], object]) -> str:
        def work() -> dict[str, Any]:
            body()
            return tool.result

        self._prepared.append(work)
        extra = {"name": tool.name, "metadata": {"tool_call_id": tool.call_id}}
        self._tool(**tool.arguments, langsmith_extra=extra)
        return tool.result_json

    def http(self, request: HttpRequest) -> int:
        self._prepared.append(request.status)
        self._http(request.method, request.url, request.host, langsmith_extra={"name": request.method})
        return request.status

    def server(self, request: ServiceRequest, body: Callable[[], None]) -> int:
        def handle() -> int:
            body()
            return request.status

        self._prepared.append(handle)
        name = f"{request.method} {request.route}"
        self._server(
            request.method,
            request.route,
            request.path,
            request.client,
            request.user_agent,
            langsmith_extra={"name": name},
        )
        return request.status

    def db(self, query: DbQuery) -> int:
        self._prepared.append(query.rows)
        name = f"{query.operation} {query.table}"
        self._db("postgresql", "shop", query.table, query.statement, langsmith_extra={"name": name})
        return query.rows

    def cache(self, call: CacheCall) -> bool:
        self._prepared.append(call.hit)
        self._cache(call.command, call.key, langsmith_extra={"name": f"redis {call.command}"})
        return call.hit

    def rag(self, query: RagQuery, body: Callable[[], str]) -> str:
        self._prepared.append(body)
        return self._rag(query.question)["answer"]

    def retrieve(self, query: RagQuery) -> list[Document]:
        found = [
            {"page_content": d.content, "type": "Document", "metadata": {**d.metadata, "id": d.id, "score": d.score}}
            for d in query.documents
        ]
        self._prepared.append(found)
        self._retrieve(query.question)
        return query.documents

    def prompt(self, prompt: Prompt) -> str:
        self._prepared.append(prompt.rendered)
        self._prompt(**prompt.variables)
        return prompt.rendered
