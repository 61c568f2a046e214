"""Chat messages in every dialect -> OpenAI chat format, which LangSmith's chat view renders.

Sources: GenAI semantic-convention messages (``{role, parts: [...]}``), flattened indexed keys
(``prefix.{i}.field``, used by OpenInference and older Traceloop), and event bodies. See
docs/conversion.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from . import keys
from .values import as_text, json_or_text, report_once

# A flattened index larger than this is an attack or a bug, not a conversation.
MAX_INDEX = 10_000
_INDEX_DIGITS = len(str(MAX_INDEX))
# Tool results inside tool results are read this deep at most.
_MAX_RESULT_DEPTH = 16
_ROLES = {"agent": "assistant", "function": "tool", "model": "assistant", "human": "user", "ai": "assistant"}


_CANONICAL_ROLES = frozenset(("system", "user", "assistant", "tool"))


def normalize_role(role: Any) -> str:
    if type(role) is str and role in _CANONICAL_ROLES:  # nearly always: spares the string work below
        return role
    text = as_text(role or "user").strip().lower()
    return _ROLES.get(text, text)


def json_text(value: Any) -> str:
    """``value`` as JSON text; as plain text when orjson refuses it (nested past 255 levels, an
    integer beyond 64 bits, a lone surrogate)."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, default=str).decode()
    except (TypeError, ValueError):
        return as_text(value)


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": json_text(arguments)}}
    if call_id is not None:
        call["id"] = call_id
    return call


def _blob_url(part: Mapping[str, Any]) -> str:
    mime_type = as_text(part.get("mime_type") or "application/octet-stream")
    return f"data:{mime_type};base64,{as_text(part.get('content', ''))}"


def from_genai(messages: Any, *, answers: bool = False) -> list[dict[str, Any]]:
    """GenAI ``{role, parts: [...], finish_reason?}`` messages (a JSON string or a list). A finish
    reason is kept on ``answers`` only: on a request's history it is noise (pydantic-ai writes it).

    One loop over the messages and their parts, kept whole: it runs for every message of every
    model call, and a call per part would cost more than most parts' own conversion."""
    if isinstance(messages, (str, bytes)):
        messages = json_or_text(messages, "gen_ai messages")
    if messages is None:
        return []
    if isinstance(messages, Mapping):
        messages = [messages]  # one message, without its array
    elif not isinstance(messages, list):
        # Not JSON (cut by an attribute length limit, say), or not messages: shown as the text it
        # is, not lost.
        if not isinstance(messages, str):
            given = type(messages).__name__
            report_once("genai_messages", "GenAI messages given as %s, not a list: shown as text", given)
        text = as_text(messages)
        return [{"role": "assistant" if answers else "user", "content": text}] if text.strip() else []
    converted: list[dict[str, Any]] = []
    for message in messages:
        # type() first: parsed JSON is always a dict, and an ABC isinstance costs 7 times more.
        if type(message) is not dict and not isinstance(message, Mapping):
            continue
        role = normalize_role(message.get("role"))
        parts = message.get("parts")
        if type(parts) is not list:
            # Already OpenAI-shaped (or close enough): keep what it says.
            converted.append({**message, "role": role})
            continue
        # Text parts are kept as strings until another kind of content turns up: nearly every
        # message is text only, and becomes one string (conversations are most of a model span's
        # conversion cost).
        texts: list[str] = []
        content: list[dict[str, Any]] | None = None
        tool_calls: list[dict[str, Any]] = []
        for part in parts:
            if type(part) is not dict and not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "text":
                text = part.get("content", "")
                text = text if type(text) is str else as_text(text)
                if content is None:
                    texts.append(text)
                else:
                    content.append({"type": "text", "text": text})
                continue
            if kind == "tool_call":
                tool_calls.append(_tool_call(part.get("id"), part.get("name"), part.get("arguments", {})))
                continue
            if kind == "tool_call_response":
                response = result_text(part.get("response", part.get("result")))
                text = json_text(response)
                converted.append({"role": "tool", "tool_call_id": part.get("id"), "content": text})
                continue
            if content is None:
                content = [{"type": "text", "text": text} for text in texts]
            if kind == "blob":
                content.append({"type": "image_url", "image_url": {"url": _blob_url(part)}})
            elif kind == "uri":
                content.append({"type": "image_url", "image_url": {"url": part.get("uri")}})
            elif kind == "reasoning":
                content.append({"type": "reasoning", "text": as_text(part.get("content", ""))})
            else:
                content.append(dict(part))
        if not texts and not content and not tool_calls:
            continue
        entry: dict[str, Any] = {"role": role}
        if content is None:
            entry["content"] = "".join(texts) if texts else None
        else:
            entry["content"] = content
        if tool_calls:
            entry["tool_calls"] = tool_calls
        if message.get("name"):
            entry["name"] = message["name"]
        if answers and message.get("finish_reason"):
            entry["finish_reason"] = message["finish_reason"]
        converted.append(entry)
    return converted


def system_instructions(instructions: Any) -> dict[str, Any] | None:
    """``gen_ai.system_instructions`` (a list of parts) as one system message."""
    parsed = (
        json_or_text(instructions, "gen_ai.system_instructions")
        if isinstance(instructions, (str, bytes))
        else instructions
    )
    if isinstance(parsed, str):
        return {"role": "system", "content": parsed}
    if isinstance(parsed, list):
        texts = [
            as_text(p.get("content", "")) for p in parsed if isinstance(p, Mapping) and p.get("type", "text") == "text"
        ]
        return {"role": "system", "content": "\n".join(texts)} if texts else None
    return None


def unflatten(
    attributes: Mapping[str, Any],
    prefix: str,
    present: frozenset[str] | None = None,
    consumed: set[str] | None = None,
) -> list[dict[str, Any]]:
    """``prefix.{i}.rest = value`` keys as a list of ``{rest: value}`` dicts, ordered by ``i``.

    Non-numeric segments (``gen_ai.prompt.prompt_filter_results``) are not messages and are left
    out; indices beyond :data:`MAX_INDEX` are skipped without dropping their valid siblings. The
    keys used join ``consumed`` (the others stay as metadata). ``present`` (:func:`keys.present` of
    the attributes) spares the scan when no key has the prefix, and keeps where each key goes for
    the next span with the same keys.
    """
    if present is not None and prefix not in present:
        return []
    # Only a key set of exactly these keys, in this order, knows where they go (a scan of others
    # would read a duplicate index or an extra key otherwise): the tuples share their strings.
    if isinstance(present, keys.KeySet) and present.keys == tuple(attributes):
        groups, used = keys.answer(present, (_layout, prefix), _layout)
        if consumed is not None:
            consumed.update(used)
        return [{field: attributes[key] for field, key in group} for group in groups]
    buckets: dict[int, dict[str, Any]] = {}
    for index, field, key in _indexed(attributes, prefix):
        buckets.setdefault(index, {})[field] = attributes[key]
        if consumed is not None:
            consumed.add(key)
    return [buckets[index] for index in sorted(buckets)]


def _indexed(names: Iterable[str], prefix: str) -> Iterator[tuple[int, str, str]]:
    """``(index, field, key)`` of each ``prefix.{index}.{field}`` key."""
    start = prefix + "."
    cut = len(start)
    for key in names:
        if not key.startswith(start):
            continue
        # "{index}.{field}": a partition rather than a regular expression, as this runs per key.
        digits, _, field = key[cut:].partition(".")
        if not (field and digits.isdecimal()) or "\n" in field:
            continue
        if len(digits) > _INDEX_DIGITS and len(digits.lstrip("0")) > _INDEX_DIGITS:
            continue  # beyond MAX_INDEX, and int() refuses texts of thousands of digits
        index = int(digits)
        if index <= MAX_INDEX:
            yield index, field, key


# Per index, in index order, the (field, key) pairs of its keys; then all the keys used.
_Layout = tuple[tuple[tuple[tuple[str, str], ...], ...], tuple[str, ...]]


def _layout(key_set: frozenset[str], question: tuple[object, str]) -> _Layout:
    """Where a prefix's keys go: the same for every span with the key set, so kept with it."""
    buckets: dict[int, list[tuple[str, str]]] = {}
    used = []
    for index, field, key in _indexed(key_set.keys, question[1]):  # type: ignore[attr-defined]
        buckets.setdefault(index, []).append((field, key))
        used.append(key)
    return tuple(tuple(buckets[index]) for index in sorted(buckets)), tuple(used)


def from_flat(fields: Mapping[str, Any], *, answers: bool = False) -> dict[str, Any] | None:
    """One flattened message (OpenInference's ``message.*`` or Traceloop's plain keys); a finish
    reason is kept on ``answers`` only."""
    flat = {key.removeprefix("message."): value for key, value in fields.items()}
    role = flat.get("role")
    message: dict[str, Any] = {"role": normalize_role(role)}
    content = flat.get("content")
    parts = unflatten(flat, "contents")
    part_calls: list[dict[str, Any]] = []
    if parts:
        items: list[dict[str, Any]] = []
        for part in parts:
            part = {key.removeprefix("message_content."): value for key, value in part.items()}
            if part.get("type") == "image":
                items.append({"type": "image_url", "image_url": {"url": part.get("image.image.url")}})
            elif any(key.startswith("tool_call.") for key in part):
                # A tool call written as a content part (OpenInference's Anthropic instrumentation
                # writes it there and in ``tool_calls``): a call, not text.
                part_calls.append(part)
            else:
                items.append({"type": "text", "text": as_text(part.get("text", ""))})
        if all(item["type"] == "text" for item in items):
            message["content"] = "".join(item["text"] for item in items) if items else None
        else:
            message["content"] = items
    elif content is not None:
        parsed = (
            json_or_text(content, "message content") if isinstance(content, str) and content[:1] == "[" else content
        )
        message["content"] = parsed
    calls = []
    for call in unflatten(flat, "tool_calls") or part_calls:
        call = {key.removeprefix("tool_call."): value for key, value in call.items()}
        calls.append(
            _tool_call(
                call.get("id"),
                call.get("function.name", call.get("name")),
                call.get("function.arguments", call.get("arguments", "")),
            )
        )
    if flat.get("function_call_name"):
        calls.append(_tool_call(None, flat["function_call_name"], flat.get("function_call_arguments_json", "")))
    if calls:
        message["tool_calls"] = calls
        message.setdefault("content", None)
    for key in ("tool_call_id", "name", "finish_reason") if answers else ("tool_call_id", "name"):
        if flat.get(key) is not None:
            message[key] = flat[key]
    if role is None and "content" not in message and not calls:
        return None
    return message


def from_prefix(
    attributes: Mapping[str, Any], prefix: str, present: frozenset[str], consumed: set[str], *, answers: bool = False
) -> list[dict[str, Any]]:
    """All messages flattened under ``prefix``; their keys join ``consumed``."""
    items = unflatten(attributes, prefix, present, consumed)
    return [message for message in (from_flat(item, answers=answers) for item in items) if message is not None]


def result_text(value: Any, depth: int = 0) -> Any:
    """A tool's result as text when it is made of text blocks (Bedrock's and Anthropic's
    ``[{"text": ...}]``, ``[{"type": "text", "text": ...}]``), else as it is."""
    if isinstance(value, (str, bytes)):
        value = json_or_text(value, "tool result")
    if depth > _MAX_RESULT_DEPTH:
        return value  # results inside results, as only an attack nests them
    if isinstance(value, list) and value and all(isinstance(block, Mapping) for block in value):
        texts = [_block_text(block, depth) for block in value]
        if all(text is not None for text in texts):
            return "".join(texts)  # type: ignore[arg-type]
    return value


def _block_text(block: Mapping[str, Any], depth: int = 0) -> str | None:
    if "toolResult" in block and isinstance(block["toolResult"], Mapping):
        inner = result_text(block["toolResult"].get("content"), depth + 1)
        return inner if isinstance(inner, str) else None
    text = block.get("text", block.get("content") if block.get("type") == "text" else None)
    return text if isinstance(text, str) else None


def _event_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """An event's ``{"id", "function": {"name", "arguments"}}``, whatever its function holds."""
    function = call.get("function")
    function = function if isinstance(function, Mapping) else {}
    return _tool_call(call.get("id"), function.get("name"), function.get("arguments", ""))


def from_blocks(role: str, content: Any) -> list[dict[str, Any]]:
    """A message whose content is a list of content blocks (Bedrock's ``text`` / ``toolUse`` /
    ``toolResult``, Anthropic's ``text`` / ``tool_use`` / ``tool_result``), as OpenAI messages: tool
    results become messages of their own."""
    texts: list[str] = []
    parts: list[Any] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        use = block.get("toolUse")
        if isinstance(use, Mapping) or block.get("type") == "tool_use":
            use = use if isinstance(use, Mapping) else block
            calls.append(_tool_call(use.get("toolUseId", use.get("id")), use.get("name"), use.get("input", {})))
            continue
        result = block.get("toolResult")
        if isinstance(result, Mapping) or block.get("type") == "tool_result":
            result = result if isinstance(result, Mapping) else block
            text = result_text(result.get("content"))
            results.append(
                {
                    "role": "tool",
                    "tool_call_id": result.get("toolUseId", result.get("tool_use_id")),
                    "content": json_text(text),
                }
            )
            continue
        text = _block_text(block)
        if text is not None:
            texts.append(text)
        else:
            parts.append(dict(block))
    messages: list[dict[str, Any]] = []
    if texts or parts or calls:
        entry: dict[str, Any] = {"role": role}
        if parts:
            entry["content"] = [*({"type": "text", "text": text} for text in texts), *parts]
        else:
            entry["content"] = "".join(texts) if texts else None
        if calls:
            entry["tool_calls"] = calls
        messages.append(entry)
    return [*results, *messages]


def from_event(name: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A GenAI message event (``gen_ai.user.message``, ``gen_ai.choice``...; span event or log
    record) as OpenAI messages. Content may be text, a JSON string of content blocks, or blocks."""
    said = body.get("message") if name == "gen_ai.choice" else body
    if isinstance(said, (str, bytes)):
        parsed = json_or_text(said, name) if said[:1] in ("{", b"{") else said
        said = parsed if isinstance(parsed, Mapping) else {"content": said}
    if not isinstance(said, Mapping):
        said = {}
    default = "assistant" if name == "gen_ai.choice" else name.removeprefix("gen_ai.").removesuffix(".message")
    role = normalize_role(said.get("role") or body.get("role") or default)
    content = said.get("content")
    if isinstance(content, (str, bytes)) and content[:1] in ("[", b"["):
        content = json_or_text(content, name)
    if isinstance(content, list) and all(isinstance(block, Mapping) for block in content):
        messages = from_blocks(role, content)
    else:
        messages = [{"role": role, "content": content}] if content is not None or "content" in said else []
    calls = said.get("tool_calls") or body.get("tool_calls")
    if isinstance(calls, list) and calls:
        found = [_event_tool_call(call) for call in calls if isinstance(call, Mapping)]
        if messages and messages[-1]["role"] == role:
            messages[-1].setdefault("tool_calls", []).extend(found)
        else:
            messages.append({"role": role, "content": None, "tool_calls": found})
    if role == "tool" and messages and body.get("id") and "tool_call_id" not in messages[-1]:
        messages[-1]["tool_call_id"] = body["id"]
    finish = body.get("finish_reason")
    if name == "gen_ai.choice" and messages and isinstance(finish, str):
        messages[-1]["finish_reason"] = finish
    return messages
