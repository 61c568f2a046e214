"""A local fake of the OpenAI chat completions API for agent loops: like ``fake_openai.py``, but it also
streams tool calls (Strands always streams), reads content given as a list of parts, and answers a tool
result. Usage numbers differ from ``fake_openai.py`` so that they can be traced back.

Answers, from the request: the last message a user's containing "weather", with tools offered: a
``get_weather`` call (``call_w1``, ``{"city": "Paris"}``); the last message a tool result: "It is sunny in
Paris."; a user's "say: X": X; anything else: "Paris.". Usage: 24 prompt tokens (4 cached), 7 completion
tokens (1 reasoning), 31 in all. Streamed chunks are 20 ms apart, the usage chunk only on request
(``stream_options.include_usage``).
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
        if not self.path.endswith("/chat/completions"):
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


class FakeOpenAI(FakeAPI):
    """``with FakeOpenAI() as api: OpenAI(base_url=api.base_url, api_key="test")``."""

    handler = _Handler
    base_path = "/v1"
