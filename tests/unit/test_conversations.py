"""Conversations converted from what was converted before answer as converting them whole does."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from otel_langsmith._convert import SpanConverter, conversations, messages
from otel_langsmith._convert.conversations import Conversations
from otel_langsmith._convert.redact import Redaction

TEXT = st.text(max_size=20)
PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "content": TEXT}),
    st.fixed_dictionaries(
        {"type": st.just("tool_call"), "id": TEXT, "name": TEXT, "arguments": st.dictionaries(TEXT, st.integers())}
    ),
    st.fixed_dictionaries({"type": st.just("tool_call_response"), "id": TEXT, "response": TEXT}),
    st.fixed_dictionaries({"type": st.just("uri"), "uri": TEXT}),
)
MESSAGE = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "tool", "model", "AI"]), "parts": st.lists(PART, max_size=3)}
    ),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": TEXT}),  # already OpenAI-shaped
    st.integers(),  # not a message at all: skipped
)
SEPARATOR = st.sampled_from([", ", ",", " , ", ",\n  "])
# What may follow a conversation already seen: more messages, or something that is not JSON.
TAIL = st.sampled_from(["", "]", ",]", "x", ", {", ", [1]] ", "]]", "}, {}]", '},{"role": 1}]'])
# Shorter conversations are converted whole: every test starts with one long enough to be kept.
OPENING = {"role": "user", "parts": [{"type": "text", "content": "x" * conversations.MIN_CHARS}]}


@settings(deadline=None)
@given(
    st.lists(st.lists(MESSAGE, min_size=0, max_size=3), min_size=1, max_size=5), SEPARATOR, st.lists(TAIL, max_size=3)
)
def test_every_step_of_a_growing_conversation_converts_as_it_does_whole(steps, separator, tails):
    cache = Conversations()
    conversation: list[object] = [OPENING]
    for added in steps:
        conversation += added
        text = "[" + separator.join(json.dumps(message) for message in conversation) + "]"
        assert cache.messages(text) == messages.from_genai(text)
        assert cache.messages(text) == messages.from_genai(text)  # the same text again
        for tail in tails:
            broken = text[:-1] + tail
            assert cache.messages(broken) == messages.from_genai(broken)


def test_only_the_added_messages_are_converted(monkeypatch):
    seen: list[int] = []
    convert = messages.from_genai

    def counting(value):
        seen.append(len(value) if isinstance(value, list) else -1)
        return convert(value)

    monkeypatch.setattr(conversations.msg, "from_genai", counting)
    cache = Conversations()
    history = [OPENING, *({"role": "user", "parts": [{"type": "text", "content": f"question {i}"}]} for i in range(40))]
    for step in range(2, 42):
        assert cache.messages(json.dumps(history[:step])) == convert(history[:step])
    assert seen == [2] + [1] * 39  # not 2, 3, ..., 41


def test_the_lists_returned_are_the_callers_own():
    cache = Conversations()
    text = json.dumps([OPENING])
    cache.messages(text).append({"role": "system", "content": "added by the caller"})
    assert cache.messages(text) == messages.from_genai(text)
    instructions = json.dumps([{"type": "text", "content": "be brief"}])
    system = cache.system(instructions)
    assert system == {"role": "system", "content": "be brief"}
    system["content"] = "changed by the caller"
    assert cache.system(instructions) == {"role": "system", "content": "be brief"}


def test_the_texts_kept_are_bounded():
    cache = Conversations(max_texts=8, max_chars=20_000)
    for index in range(100):
        cache.messages(
            json.dumps([OPENING, {"role": "user", "parts": [{"type": "text", "content": f"{index} " * 40}]}])
        )
        assert cache._count <= 8 and cache._chars <= 20_000
        assert cache._count == sum(len(entries) for entries in cache._texts.values())
        kept = [text for entries in cache._texts.values() for text, _ in entries]
        assert cache._chars == sum(map(len, kept))
        assert cache._heads == Counter(text[: conversations._HEAD] for text in kept)


def test_conversations_that_begin_alike_are_told_apart(monkeypatch):
    seen: list[int] = []
    convert = messages.from_genai
    monkeypatch.setattr(conversations.msg, "from_genai", lambda value: seen.append(len(value)) or convert(value))
    cache = Conversations()
    prompt = {"role": "system", "parts": [{"type": "text", "content": "You are a travel agent. " * 200}]}
    users = [[prompt, {"role": "user", "parts": [{"type": "text", "content": f"user {n}"}]}] for n in range(20)]
    for step in range(3):
        for n, history in enumerate(users):
            # Some conversations end alike too: the same reply, at the same length.
            reply = f"step {step}" if n < 6 else f"step {step} of {n}"
            history.append({"role": "assistant", "parts": [{"type": "text", "content": reply}]})
            assert cache.messages(json.dumps(history)) == convert(history)
    assert seen[:20] == [3] * 20  # each conversation's first text, whole
    assert seen[20:] == [1] * 40  # then only what each added


def _chat(record_spans, conversation):
    def body(tracer):
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": json.dumps(conversation)}
        with tracer.start_as_current_span("chat", attributes=attributes):
            pass

    (span,) = record_spans(body)
    return span


def test_a_hook_that_changes_messages_in_place_sees_each_run_once(record_spans):
    def shout(inputs):
        for message in inputs["messages"]:
            message["content"] += "!"
        return inputs

    convert = SpanConverter(project="p", redaction=Redaction(process_inputs=shout), logs=lambda _, __: ())
    question = "hi " * conversations.MIN_CHARS  # long enough to be remembered, were it allowed
    first = [{"role": "user", "parts": [{"type": "text", "content": question}]}]
    second = [*first, {"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}]
    convert(_chat(record_spans, first))
    run = convert(_chat(record_spans, second)).run
    # Had the two runs shared the first message, the hook would have changed it twice.
    assert [m["content"] for m in run["inputs"]["messages"]] == [question + "!", "hello!"]
