"""A local fake of the Anthropic Messages API (``POST /v1/messages``, JSON or SSE streaming, tool_use),
so that the real ``anthropic`` client and the instrumentations around it run without any network.

Answers, from the last message: a ``tool_result`` gets "It is sunny in Paris."; a user text containing
"weather" with tools offered gets "Let me check." and a ``get_weather`` tool_use (``toolu_01``,
``{"city": "Paris"}``); "say: X" gets X; anything else gets "Paris.". Usage: 24 input tokens, 7 output
tokens, 4 read from the cache and 2 written to it. A stream sends ``message_start`` with 1 output token, as
the API does, and the final count of 7 in ``message_delta``; events are 20 ms apart.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fake_api import FakeAPI, FakeHandler

RESPONSE_MODEL = "claude-sonnet-4-5-20250929"
USAGE = {"input_tokens": 24, "output_tokens": 7, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2}
EVENT_DELAY = 0.02


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


def _answer(request: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    messages = request.get("messages") or [{}]
    content = messages[-1].get("content")
    if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return [{"type": "text", "text": "It is sunny in Paris."}], "end_turn"
    text = _text(content)
    if request.get("tools") and "weather" in text:
        call = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
        return [{"type": "text", "text": "Let me check."}, call], "tool_use"
    if text.startswith("say: "):
        return [{"type": "text", "text": text[5:]}], "end_turn"
    return [{"type": "text", "text": "Paris."}], "end_turn"


class _Handler(FakeHandler):
    def do_POST(self) -> None:
        body = self._read_body()
        if not self.path.startswith("/v1/messages"):
            self._json({"type": "error", "error": {"type": "not_found_error", "message": self.path}}, status=404)
            return
        blocks, stop = _answer(body)
        message = {"id": "msg_01ABC", "type": "message", "role": "assistant", "model": RESPONSE_MODEL}
        if body.get("stream"):
            self._stream(message, blocks, stop)
        else:
            self._json({**message, "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": USAGE})

    def _stream(self, message: dict[str, Any], blocks: list[dict[str, Any]], stop: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**USAGE}}
        start["usage"]["output_tokens"] = 1
        self._event("message_start", {"message": start})
        self._event("ping", {})
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                self._event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
                words = block["text"].split(" ")
                for i, word in enumerate(words):
                    piece = word + (" " if i < len(words) - 1 else "")
                    self._event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}})
            else:
                opening = {**block, "input": {}}
                self._event("content_block_start", {"index": index, "content_block": opening})
                arguments = json.dumps(block["input"])
                for piece in (arguments[:5], arguments[5:]):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    self._event("content_block_delta", {"index": index, "delta": delta})
            self._event("content_block_stop", {"index": index})
        delta = {
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": USAGE["output_tokens"]},
        }
        self._event("message_delta", delta)
        self._event("message_stop", {})
        self._chunk(b"")

    def _event(self, name: str, data: dict[str, Any]) -> None:
        time.sleep(EVENT_DELAY)
        self._chunk(f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode())


class FakeAnthropic(FakeAPI):
    """``with FakeAnthropic() as api: Anthropic(base_url=api.base_url, api_key="test")``."""

    handler = _Handler
    base_path = ""
