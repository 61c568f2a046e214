"""The shortcuts of the conversion hot path answer as the long way does."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, Status, StatusCode
from test_llm_convert import convert

import otel_langsmith._convert as convert_module
from otel_langsmith._convert import keys, messages, run_type, span_to_pending

KEY = st.text(alphabet="abc._0123456789", min_size=1, max_size=30)


@settings(deadline=None)
@given(st.lists(KEY, max_size=12, unique=True), KEY)
def test_a_key_set_holds_every_key_and_the_prefixes_conventions_are_recognised_by(names, probe):
    key_set = keys.present(tuple(names))
    assert set(names) <= key_set
    # A prefix of up to three segments is present exactly when some key continues it with a dot.
    if probe.count(".") < 3 and len(probe) <= keys.MAX_PREFIX_CHARS:
        assert (probe in key_set) == (probe in names or any(name.startswith(probe + ".") for name in names))
    candidates = (probe, *names[:3])
    assert keys.among(key_set, candidates) == tuple(c for c in candidates if c in key_set)
    assert keys.among(key_set, candidates) == keys.among(key_set, candidates)  # the kept answer


def test_hostile_keys_stay_bounded():
    dotted = "a." * 50_000  # a 100,000-character key of 50,000 segments
    key_set = keys.present((dotted,))
    assert len(key_set) == 1 + keys.MAX_PREFIX_SEGMENTS - 1  # the key and three prefixes, not 50,000
    assert keys.present((dotted,)) is not key_set  # too long to be kept in the cache
    assert keys.present(("gen_ai.system",)) is keys.present(("gen_ai.system",))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"role": "user", "parts": [{"type": "text", "content": "hello"}]}, {"role": "user", "content": "hello"}),
        (
            {"role": "assistant", "parts": [{"type": "text", "content": 42}], "name": "bot", "finish_reason": "stop"},
            {"role": "assistant", "content": "42", "name": "bot", "finish_reason": "stop"},
        ),
        (
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": {"x": 1}}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": '{"x":1}'}, "id": "c1"}],
            },
        ),
        (
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": {"ok": True}}]},
            {"role": "tool", "tool_call_id": "c1", "content": '{"ok":true}'},
        ),
        (
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "result": "done"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ),
        (
            {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "blob", "content": "AAAA"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a"},
                    {"type": "image_url", "image_url": {"url": "data:application/octet-stream;base64,AAAA"}},
                ],
            },
        ),
        (
            {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]},
            {"role": "user", "content": "ab"},
        ),
    ],
)
def test_text_parts_stay_one_string_until_other_content_turns_up(message, expected):
    assert messages.from_genai([message], answers=True) == [expected]
    # In a request's history, a finish reason is left out.
    assert messages.from_genai([message]) == [{k: v for k, v in expected.items() if k != "finish_reason"}]


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"gen_ai.usage.prompt_tokens": 3, "gen_ai.usage.completion_tokens": 4}, (3, 4, 7)),
        ({"gen_ai.usage.input_tokens": "5", "gen_ai.usage.total_tokens": 9}, (5, 0, 9)),
        # A spelling whose value is not a number gives way to the next spelling the span has.
        ({"gen_ai.usage.input_tokens": "many", "gen_ai.usage.prompt_tokens": 2}, (2, 0, 2)),
        ({"llm.token_count.prompt": 1, "llm.token_count.completion": 2, "llm.token_count.total": 3}, (1, 2, 3)),
        ({"ai.usage.promptTokens": 6, "ai.usage.completionTokens": 1}, (6, 1, 7)),
    ],
)
def test_usage_from_whichever_spelling_the_span_has(record_spans, attributes, expected):
    usage = convert(record_spans, {"gen_ai.operation.name": "chat", **attributes}).metadata["usage_metadata"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == expected


def test_token_details_are_grouped(record_spans):
    pending = convert(
        record_spans,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cache_read.input_tokens": 4,
            "gen_ai.usage.reasoning_tokens": 2,
        },
    )
    assert pending.metadata["usage_metadata"] == {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_token_details": {"cache_read": 4},
        "output_token_details": {"reasoning": 2},
    }


def test_spans_of_one_kind_share_the_answers_but_not_their_values(record_spans):
    first = convert(record_spans, {"gen_ai.request.model": "a", "gen_ai.usage.input_tokens": 1}, name="chat a")
    second = convert(record_spans, {"gen_ai.request.model": "b", "gen_ai.usage.input_tokens": 2}, name="chat a")
    assert (first.metadata["ls_model_name"], second.metadata["ls_model_name"]) == ("a", "b")
    assert (first.metadata["usage_metadata"]["input_tokens"], second.metadata["usage_metadata"]["input_tokens"]) == (
        1,
        2,
    )
    # The same name with other keys is another question.
    third = convert(record_spans, {"user.id": "u"}, name="chat a")
    assert (first.run["run_type"], third.run["run_type"]) == ("llm", "llm")
    assert third.metadata["user_id"] == "u"


def test_a_key_that_is_only_a_prefix_of_another_answers_nothing(record_spans):
    # "gen_ai.system", "gen_ai.request.temperature" and "gen_ai.usage.input_tokens" are prefixes
    # here, not keys: the key set holds them, the attributes do not.
    pending = convert(
        record_spans,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system.vendor": "acme",
            "gen_ai.request.temperature.scale": "celsius",
            "gen_ai.usage.input_tokens.cached": 3,
            "gen_ai.usage.output_tokens": 2,
        },
    )
    assert "otel_langsmith_conversion_error" not in pending.metadata
    assert pending.metadata["usage_metadata"] == {"input_tokens": 0, "output_tokens": 2, "total_tokens": 2}
    assert "ls_provider" not in pending.metadata and "ls_temperature" not in pending.metadata
    assert pending.metadata["gen_ai.system.vendor"] == "acme"


FLAT_KEY = st.one_of(
    st.builds("p.{}.{}".format, st.sampled_from(["0", "1", "01", "2", "10000", "10001", "x", ""]), KEY),
    st.builds("p.{}".format, KEY),
    KEY,
)


@settings(deadline=None)
@given(st.lists(FLAT_KEY, max_size=12, unique=True), st.data())
def test_flattened_keys_read_through_their_kept_layout_as_the_long_way(names, data):
    attributes = {name: data.draw(st.integers()) for name in names}
    present = keys.present(tuple(attributes))
    for _ in range(2):  # worked out, then kept with the key set
        kept: set[str] = set()
        scanned: set[str] = set()
        assert messages.unflatten(attributes, "p", present, kept) == messages.unflatten(attributes, "p", None, scanned)
        assert kept == scanned
    # Another span with the same keys reads its own values, not those of the span before.
    others = {name: -value - 1 for name, value in attributes.items()}
    assert messages.unflatten(others, "p", keys.present(tuple(others))) == messages.unflatten(others, "p")


def test_flattened_keys_are_read_as_they_are_when_the_key_set_is_not_theirs():
    present = keys.present(("p.0.a", "p.1.b"))
    messages.unflatten({"p.0.a": 1, "p.1.b": 2}, "p", present)  # the layout kept for those keys
    consumed: set[str] = set()
    assert messages.unflatten({"p.0.a": 1, "p.2.c": 3}, "p", present, consumed) == [{"a": 1}, {"c": 3}]
    assert consumed == {"p.0.a", "p.2.c"}


def test_documents_of_retrievers_with_the_same_keys_keep_their_own_content(record_spans):
    def retriever(word: str) -> dict[str, object]:
        return {
            "openinference.span.kind": "RETRIEVER",
            **{f"retrieval.documents.{i}.document.content": f"{word} {i}" for i in range(3)},
            "retrieval.documents.1.document.score": 0.5,
        }

    first = convert(record_spans, retriever("alpha"), name="retrieve")
    second = convert(record_spans, retriever("beta"), name="retrieve")
    for pending, word in ((first, "alpha"), (second, "beta")):
        documents = pending.run["outputs"]["documents"]
        assert [document["page_content"] for document in documents] == [f"{word} {i}" for i in range(3)]
        assert documents[1]["metadata"] == {"score": 0.5}
        assert not any(key.startswith("retrieval.documents") for key in pending.metadata)


# Keys no convention reads, then a key (or a key under a prefix) each convention reads.
_PLAIN_KEYS = ("http.request.method", "url.full", "server.port", "db.system", "db.statement", "raw.payload")
_CONVENTION_KEYS = (
    "langsmith.span.kind",
    "langsmith.trace.name",
    "langsmith.metadata.team",
    "openinference.span.kind",
    "gen_ai.operation.name",
    "traceloop.span.kind",
    "llm.request.type",
    "ai.operationId",
    "gen_ai.tool.name",
    "gen_ai.tool.call.id",
    "llm.prompt_template.variables",
    "retrieval.documents.0.document.content",
    "db.vector.query.top_k",
    "gen_ai.request.model",
    "traceloop.entity.name",
    "tag.tags",
    "traceloop.association.properties.user_id",
    "metadata",
    "session_id",
    "thread_id",
    "session.id",
    "user.id",
    "gen_ai.conversation.id",
    "input.value",
    "output.value",
    "traceloop.entity.input",
    "gen_ai.prompt",
    "gen_ai.completion",
)
_VALUES = st.one_of(
    st.sampled_from(["chat", "execute_tool", "llm", "tool", "x", "", '{"q": 1}', "[1, 2]", "gpt-4o"]),
    st.integers(-5, 5),
    st.binary(max_size=6),
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["c", ""])),
)
_NAMES = st.sampled_from(["GET", "SELECT users", "chat gpt-4o", "openai.embeddings", "execute_tool search"])


def _no_answer(attributes, name):  # a rule for every span that never answers
    return None


_PARENTS = {
    "none": None,
    "local": SpanContext(0x51, 0x61, is_remote=False),
    "remote": SpanContext(0x51, 0x61, is_remote=True),
}


def _assert_converted_alike(attributes, name="GET", parent="local", error=False, with_event=False):
    """``_plain_pending`` is a shortcut: a span converts as the conventions asked one by one convert it."""

    def span() -> ReadableSpan:  # each conversion gets its own: the plain way takes the attributes as they are
        return ReadableSpan(
            name=name,
            context=SpanContext(0x51, 0x62, is_remote=False),
            parent=_PARENTS[parent],
            attributes=dict(attributes),
            events=[Event("note", {"k": 1}, timestamp=1_500)] if with_event else (),
            status=Status(StatusCode.ERROR, "boom") if error else Status(StatusCode.UNSET),
            start_time=1_000,
            end_time=2_000,
        )

    shortcut = span_to_pending(span(), project="p")
    # A rule that applies to every span leaves no span plain: each convention is asked in turn.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_type, "RULES", [*run_type.RULES, (_no_answer, None)])
        long_way = span_to_pending(span(), project="p")
    assert dataclasses.astuple(shortcut) == dataclasses.astuple(long_way)
    assert list(shortcut.run) == list(long_way.run)  # the same fields, in the same order


@pytest.mark.parametrize("key", _CONVENTION_KEYS)
@pytest.mark.parametrize("value", ["chat", "tool", ("a", "b"), b"x", 3, '{"q": 1}'])
def test_each_convention_key_on_an_http_span_converts_as_the_long_way(key, value):
    _assert_converted_alike({"http.request.method": "GET", "server.port": 443, key: value})


@settings(deadline=None)
@given(
    st.dictionaries(st.sampled_from(_PLAIN_KEYS), _VALUES, max_size=4),
    st.one_of(st.none(), st.tuples(st.sampled_from(_CONVENTION_KEYS), _VALUES)),
    _NAMES,
    st.sampled_from(sorted(_PARENTS)),
    st.booleans(),
    st.booleans(),
)
def test_any_span_converts_as_the_long_way(plain, convention, name, parent, error, with_event):
    attributes = {**plain, **dict([convention] if convention else [])}
    _assert_converted_alike(attributes, name, parent, error, with_event)


def test_an_http_span_is_plain_and_a_span_with_any_convention_key_is_not():
    question = ("plain", id(run_type.RULES))
    assert convert_module._plain(keys.present(_PLAIN_KEYS), question)
    for key in _CONVENTION_KEYS:
        assert not convert_module._plain(keys.present((*_PLAIN_KEYS, key)), question), key
