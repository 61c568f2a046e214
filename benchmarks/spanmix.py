"""A realistic span mix, recorded by the real OpenTelemetry SDK, for the benchmarks to share.

One trace is an agent run as a GenAI instrumentation records it: an ``invoke_agent`` root, then
steps of ``chat`` (the model call, with the whole conversation so far as JSON messages, the reply,
token counts and request parameters) and ``execute_tool`` (JSON arguments and result), each with the
HTTP client span of the request it made underneath, and a last ``chat`` that answers. Children end
before their parents, as they do in an application. The content is varied text, not one repeated
string, so that compression ratios are not flattered.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

STEPS = 4
SPANS_PER_TRACE = 1 + STEPS * 4 + 2

_WORDS = (
    "the weather forecast city temperature tomorrow rain wind humidity report station sensor "
    "hourly daily average maximum minimum coastal northern region pressure front cloud cover "
    "visibility advisory travel flight airport delay booking hotel price availability guest "
    "review rating distance walking museum opening hours ticket discount family children"
).split()


class _Recorder(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _genai(role: str, text: str) -> dict:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def _http(tracer, method: str, url: str, host: str, status: int) -> None:  # type: ignore[no-untyped-def]
    attributes = {
        "http.request.method": method,
        "url.full": url,
        "server.address": host,
        "server.port": 443,
        "network.protocol.version": "1.1",
        "http.response.status_code": status,
        "user_agent.original": "python-httpx/0.28.1",
    }
    with tracer.start_as_current_span(method, kind=SpanKind.CLIENT, attributes=attributes):
        pass


def record(traces: int, *, seed: int = 7) -> list[ReadableSpan]:
    """``traces`` agent runs; ``traces * SPANS_PER_TRACE`` spans in the order they ended."""
    rng = random.Random(seed)
    recorder = _Recorder()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "travel-agent", "service.version": "1.4.2", "deployment.environment": "prod"}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(recorder))
    tracer = provider.get_tracer("bench.agent")
    system = _text(rng, 120)
    for index in range(traces):
        question = _text(rng, 40)
        conversation = [_genai("user", question)]
        root_attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "travel-agent",
            "gen_ai.conversation.id": f"conversation-{index % 50}",
            "input.value": json.dumps({"question": question}),
        }
        with tracer.start_as_current_span("invoke_agent travel-agent", attributes=root_attributes) as root:
            for step in range(STEPS + 1):
                final = step == STEPS
                reply = _text(rng, 60) if final else None
                call_id = f"call_{index}_{step}"
                arguments = {"city": rng.choice(_WORDS), "days": rng.randint(1, 7)}
                output = (
                    [{"role": "assistant", "parts": [{"type": "text", "content": reply}], "finish_reason": "stop"}]
                    if final
                    else [
                        {
                            "role": "assistant",
                            "parts": [
                                {"type": "tool_call", "id": call_id, "name": "get_forecast", "arguments": arguments}
                            ],
                            "finish_reason": "tool_call",
                        }
                    ]
                )
                chat = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.request.max_tokens": 512,
                    "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):016x}",
                    "gen_ai.response.finish_reasons": ("stop",) if final else ("tool_call",),
                    "gen_ai.usage.input_tokens": 180 + 90 * step,
                    "gen_ai.usage.output_tokens": 70 if final else 24,
                    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": system}]),
                    "gen_ai.input.messages": json.dumps(conversation),
                    "gen_ai.output.messages": json.dumps(output),
                    "server.address": "api.openai.com",
                    "server.port": 443,
                }
                with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=chat):
                    _http(tracer, "POST", "https://api.openai.com/v1/chat/completions", "api.openai.com", 200)
                if final:
                    root.set_attribute("output.value", json.dumps({"answer": reply}))
                    break
                conversation.append(output[0])
                result = {"forecast": _text(rng, 35), "temperature_c": rng.randint(-5, 35)}
                tool = {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "get_forecast",
                    "gen_ai.tool.call.id": call_id,
                    "gen_ai.tool.call.arguments": json.dumps(arguments),
                    "gen_ai.tool.call.result": json.dumps(result),
                }
                with tracer.start_as_current_span("execute_tool get_forecast", attributes=tool):
                    _http(
                        tracer,
                        "GET",
                        f"https://weather.example.com/v2/forecast?city={arguments['city']}",
                        "weather.example.com",
                        200,
                    )
                conversation.append(
                    {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id, "response": result}]}
                )
    provider.shutdown()
    return recorder.spans
