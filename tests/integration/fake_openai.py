"""A local fake of the OpenAI HTTP API (chat completions, streaming, tool calls, embeddings), so
that the real OpenAI client and the real instrumentation libraries run without any network.

A user message containing "weather" with tools offered gets a tool call back; anything else gets
"Paris." (or the echo of "say: ..."). Usage: 24 prompt tokens (4 cached) and 2 completion tokens.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fake_api import FakeAPI, FakeHandler

RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
USAGE = {
    "prompt_tokens": 24,
    "completion_tokens": 2,
    "total_tokens": 26,
    "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 1, "audio_tokens": 0},
}


def _answer(request: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]] | None, str]:
    last = next((m for m in reversed(request.get("messages", [])) if m.get("role") == "user"), {})
    text = last.get("content") if isinstance(last.get("content"), str) else ""
    if "weather" in text and request.get("tools") and request["messages"][-1].get("role") == "user":
        call = {
            "id": "call_w1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
        return None, [call], "tool_calls"
    if text.startswith("say: "):
        return text[5:], None, "stop"
    return "Paris.", None, "stop"


class _Handler(FakeHandler):
    def do_POST(self) -> None:
        body = self._read_body()
        if self.path.endswith("/chat/completions"):
            if body.get("stream"):
                self._stream(body)
            else:
                self._json(self._completion(body))
        elif self.path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(inputs))]
            self._json(
                {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                }
            )
        else:
            self._json({"error": {"message": "not found"}}, status=404)

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        content, tool_calls, finish = _answer(body)
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if tool_calls:
            message["tool_calls"] = tool_calls
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
        content, _, finish = _answer(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {
            "id": "chatcmpl-AB12",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": RESPONSE_MODEL,
        }
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        ]
        for piece in (content or "").split(" "):
            chunks.append({**base, "choices": [{"index": 0, "delta": {"content": piece + " "}, "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": USAGE})
        for chunk in chunks:
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            time.sleep(0.01)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")


class FakeOpenAI(FakeAPI):
    """``with FakeOpenAI() as api: OpenAI(base_url=api.base_url, api_key="test")``."""

    handler = _Handler
    base_path = "/v1"
