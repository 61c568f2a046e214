"""A local fake of the OpenAI chat completions and Responses APIs for agent loops: like ``fake_openai.py``,
but it also streams tool calls (Strands always streams), reads content given as a list of parts, and answers a
tool result. Usage numbers differ from ``fake_openai.py`` so that they can be traced back.

Answers, from the request: the last message a user's containing "weather", with tools offered: a
``get_weather`` call (``call_w1``, ``{"city": "Paris"}``); the last message a tool result: "It is sunny in
Paris."; a user's "say: X": X; anything else: "Paris.". Usage: 24 prompt tokens (4 cached), 7 completion
tokens (1 reasoning), 31 in all. Streamed chunks are 20 ms apart, the usage chunk only on request
(``stream_options.include_usage``).

``POST /v1/responses`` (the Responses API) answers the same way from its last input item (a
``function_call_output`` item is the tool result; ``input`` may be a plain string), as a ``response`` object
or, with ``stream``, as the API's server-sent events (``event: response.created``, ``response.in_progress``,
``response.output_item.added``, ``response.content_part.added``, ``response.output_text.delta`` or
``response.function_call_arguments.delta`` ..., the ``.done`` events, ``response.completed`` with the usage),
20 ms apart. Usage: ``input_tokens`` 24 (4 cached), ``output_tokens`` 7 (1 reasoning), ``total_tokens`` 31.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fake_api import FakeAPI, FakeHandler

RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
USAGE = {
    "prompt_tokens": 24,
    "completion_tokens": 7,
    "total_tokens": 31,
    "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 1, "audio_tokens": 0},
}
CHUNK_DELAY = 0.02
TOOL_CALL = {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text")


def _answer(request: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None, str]:
    messages = request.get("messages") or [{}]
    last = messages[-1]
    if last.get("role") == "tool":
        return "It is sunny in Paris.", None, "stop"
    text = _text(last.get("content")) if last.get("role") == "user" else ""
    if request.get("tools") and "weather" in text:
        return None, TOOL_CALL, "tool_calls"
    if text.startswith("say: "):
        return text[5:], None, "stop"
    return "Paris.", None, "stop"


class _Handler(FakeHandler):
    def do_POST(self) -> None:
        body = self._read_body()
        if self.path.endswith("/responses"):
            if body.get("stream"):
                self._stream_response(body)
            else:
                self._json(_response(body, _response_output(body), "completed"))
        elif not self.path.endswith("/chat/completions"):
            self._json({"error": {"message": f"not found: {self.path}"}}, status=404)
        elif body.get("stream"):
            self._stream(body)
        else:
            self._json(self._completion(body))

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        content, call, finish = _answer(body)
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if call:
            message["tool_calls"] = [call]
        return {
            "id": "chatcmpl-AB12",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": RESPONSE_MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": USAGE,
            "service_tier": "default",
            "system_fingerprint": "fp_x",
        }

    def _stream(self, body: dict[str, Any]) -> None:
        content, call, finish = _answer(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if call:
            opening = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            deltas.append({"tool_calls": [{"index": 0, **opening}]})
            arguments = call["function"]["arguments"]
            for piece in (arguments[:6], arguments[6:]):
                deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        else:
            words = (content or "").split(" ")
            deltas += [{"content": word + (" " if i < len(words) - 1 else "")} for i, word in enumerate(words)]
        base = {"id": "chatcmpl-AB12", "object": "chat.completion.chunk", "created": int(time.time())}
        base["model"] = RESPONSE_MODEL
        chunks = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": USAGE})
        for chunk in chunks:
            time.sleep(CHUNK_DELAY)
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _stream_response(self, body: dict[str, Any]) -> None:
        """The Responses API's server-sent events, each ``event: TYPE`` and ``data: {..., "type": TYPE,
        "sequence_number": n}``."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        (item,) = _response_output(body)
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": _response(body, [], "in_progress")},
            {"type": "response.in_progress", "response": _response(body, [], "in_progress")},
        ]
        place = {"item_id": item["id"], "output_index": 0}
        if item["type"] == "function_call":
            arguments = item["arguments"]
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": 0,
                    "item": {**item, "arguments": "", "status": "in_progress"},
                }
            )
            events += [
                {"type": "response.function_call_arguments.delta", **place, "delta": piece}
                for piece in (arguments[:6], arguments[6:])
            ]
            events.append({"type": "response.function_call_arguments.done", **place, "arguments": arguments})
        else:
            text = item["content"][0]["text"]
            part = {"content_index": 0, **place}
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": 0,
                    "item": {**item, "content": [], "status": "in_progress"},
                }
            )
            events.append({"type": "response.content_part.added", **part, "part": empty})
            words = text.split(" ")
            events += [
                {
                    "type": "response.output_text.delta",
                    **part,
                    "delta": word + (" " if i < len(words) - 1 else ""),
                    "logprobs": [],
                }
                for i, word in enumerate(words)
            ]
            events.append({"type": "response.output_text.done", **part, "text": text, "logprobs": []})
            events.append({"type": "response.content_part.done", **part, "part": item["content"][0]})
        events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
        events.append({"type": "response.completed", "response": _response(body, [item], "completed")})
        for number, event in enumerate(events):
            time.sleep(CHUNK_DELAY)
            data = json.dumps({**event, "sequence_number": number})
            self._chunk(f"event: {event['type']}\ndata: {data}\n\n".encode())
        self._chunk(b"")


# -- the Responses API -------------------------------------------------------------------------------

RESPONSES_USAGE = {
    "input_tokens": 24,
    "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 1},
    "total_tokens": 31,
}
FUNCTION_CALL = {
    "id": "fc_AB12",
    "type": "function_call",
    "status": "completed",
    "call_id": "call_w1",
    "name": "get_weather",
    "arguments": '{"city": "Paris"}',
}


def _input_text(item: dict[str, Any]) -> str:
    """A Responses input message's text: content a string, or a list of ``input_text`` parts."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "input_text")


def _response_output(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The output items answering a ``POST /v1/responses``: one function call or one assistant message."""
    items = request.get("input")
    last = {"role": "user", "content": items} if isinstance(items, str) else (items or [{}])[-1]
    if last.get("type") == "function_call_output":
        text = "It is sunny in Paris."
    else:
        said = _input_text(last) if last.get("role") == "user" and last.get("type", "message") == "message" else ""
        if request.get("tools") and "weather" in said:
            return [FUNCTION_CALL]
        text = said[5:] if said.startswith("say: ") else "Paris."
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return [{"id": "msg_AB12", "type": "message", "status": "completed", "role": "assistant", "content": content}]


def _response(request: dict[str, Any], output: list[dict[str, Any]], status: str) -> dict[str, Any]:
    """A ``response`` object, as the API returns it (and streams it, ``in_progress`` and without usage, in
    ``response.created``)."""
    return {
        "id": "resp_AB12",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": RESPONSE_MODEL,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": RESPONSES_USAGE if status == "completed" else None,
        "user": None,
        "metadata": {},
    }


class FakeOpenAI(FakeAPI):
    """``with FakeOpenAI() as api: OpenAI(base_url=api.base_url, api_key="test")``."""

    handler = _Handler
    base_path = "/v1"
