"""What the README and the changelog promise, attacked where an audit found them broken: runs refused
for their credentials kept in the spool for a corrected key (and not sent again with the same
one), a ``langsmith.span.id`` two siblings share going to the first of them, a function or a class
(or an object of the wrong kind) given for a setting, ``shutdown_grace=0`` against an endpoint that
never answers, and GenAI messages given as a number or as one message object.

Everything runs on the real OpenTelemetry SDK and reaches the package's own receiver (or a socket
that never answers) over loopback, through a ``LangSmithSpanExporter`` behind a
``BatchSpanProcessor`` and, where the point holds for both, a ``LangSmithSpanProcessor``."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests
from helpers import Silent, Traced
from test_attack_values_lifecycle import by_name
from test_hostile_context import assert_accepted, assert_under, fresh_throttles  # noqa: F401 - fresh_throttles: autouse

from otel_langsmith import RetryPolicy
from otel_langsmith._settings import Settings
from otel_langsmith.testing import LangSmithReceiver

FRONTS = ("exporter", "processor")


# -- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def traced() -> Iterator[Callable[..., Traced]]:
    """``traced(front, **options)``: a :class:`Traced`, shut down after the test at the latest."""
    made: list[Traced] = []

    def make(front: str, **options) -> Traced:
        made.append(Traced(front, **options))
        return made[-1]

    yield make
    for one in made:
        try:
            one.shutdown()
        except Exception:
            pass  # the test has said what it found: a shutdown that raises fails it there


def to(receiver: LangSmithReceiver, **options) -> dict:
    """Options sending to ``receiver`` with its key, unless ``options`` say otherwise."""
    return {"endpoint": receiver.url, "api_key": receiver.api_key, **options}


def warnings_said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()[:300]
        for record in caplog.records
        if record.name.startswith("otel_langsmith") and record.levelno >= logging.WARNING
    ]


# -- 1. runs refused for their credentials wait in the spool for a corrected key --------------------------


def test_runs_refused_for_their_key_are_spooled_once_and_sent_by_a_corrected_key(langsmith_receiver, tmp_path, traced):
    spool = tmp_path / "spool"
    wrong = traced("exporter", **to(langsmith_receiver, api_key="lsv2-wrong-abcd", spool_dir=str(spool)))
    with wrong.tracer.start_as_current_span("refused-root"):
        with wrong.tracer.start_as_current_span("refused-child"):
            pass
    assert wrong.provider.force_flush(10_000)  # the batch processor hands the spans over

    def refused() -> list:
        return [r for r in langsmith_receiver.requests if r.method == "POST" and r.key_ending == "abcd"]

    deadline = time.monotonic() + 5
    while not refused() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.status for r in refused()] == [401]
    # Long enough for the sends again with the same key that were made after about 1 and 3 s.
    time.sleep(5)
    assert [r.status for r in refused()] == [401], [(r.status, round(r.at - refused()[0].at, 1)) for r in refused()]
    assert wrong.sink.stats().runs_spooled == 2  # spooled once, not anew at every attempt
    assert langsmith_receiver.runs == {}
    assert any(name for name in os.listdir(spool)), "the spool holds nothing"

    # A corrected key, through the same directory: the refused runs arrive with its own.
    right = traced("exporter", **to(langsmith_receiver, spool_dir=str(spool)))
    with right.tracer.start_as_current_span("corrected"):
        pass
    assert right.provider.force_flush(10_000)
    assert langsmith_receiver.wait_for_runs(3, timeout=10), sorted(by_name(langsmith_receiver))
    right.shutdown()
    wrong.shutdown()
    runs = by_name(langsmith_receiver)
    assert sorted(runs) == ["corrected", "refused-child", "refused-root"]
    assert_under(runs["refused-child"], runs["refused-root"])
    assert langsmith_receiver.duplicate_posts == 0
    # The first exporter never read the spool again; nothing else was refused.
    assert langsmith_receiver.rejected == refused() and [r.status for r in refused()] == [401]
    assert langsmith_receiver.problems() == []


# -- 2. a langsmith.span.id two siblings share goes to the first ------------------------------------------


@pytest.mark.parametrize("front", FRONTS)
def test_an_id_two_siblings_share_goes_to_the_first(langsmith_receiver, traced, front):
    shared = str(uuid.uuid4())
    sending = traced(front, **to(langsmith_receiver))
    with sending.tracer.start_as_current_span("root"):
        with sending.tracer.start_as_current_span("first", attributes={"langsmith.span.id": shared}):
            pass
        with sending.tracer.start_as_current_span("second", attributes={"langsmith.span.id": shared}):
            pass
    sending.shutdown()
    runs = by_name(langsmith_receiver)
    assert sorted(runs) == ["first", "root", "second"]
    assert [run["name"] for run in runs.values() if run["id"] == shared] == ["first"]
    assert runs["second"]["id"] != shared
    assert runs["second"]["extra"]["metadata"]["otel_langsmith_duplicate_run_id"] == shared
    assert "otel_langsmith_duplicate_run_id" not in runs["first"]["extra"].get("metadata", {})
    assert_under(runs["first"], runs["root"])
    assert_under(runs["second"], runs["root"])
    assert_accepted(langsmith_receiver)


# -- 3. a function, a class or an object of the wrong kind given for a setting ---------------------------


def test_a_class_given_as_project_sends_to_the_default_project(langsmith_receiver, traced, caplog):
    default = Settings.resolve(environ={}).project
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        sending = traced("exporter", **to(langsmith_receiver, project=str))
        with sending.tracer.start_as_current_span("a"):
            pass
        sending.shutdown()
    assert [run["session_name"] for run in langsmith_receiver.runs.values()] == [default]  # not "<class 'str'>"
    assert any("project" in line for line in warnings_said(caplog)), warnings_said(caplog)
    assert sending.sink.settings.project == default
    assert_accepted(langsmith_receiver)


def test_a_function_given_as_timeout_is_said_and_costs_nothing(langsmith_receiver, traced, caplog):
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        sending = traced("exporter", **to(langsmith_receiver, timeout=lambda: 5))
        with sending.tracer.start_as_current_span("a"):
            pass
        sending.shutdown()  # raised into the application when the sender's thread failed on it
    assert [run["name"] for run in langsmith_receiver.runs.values()] == ["a"]
    assert sending.sink.stats().dropped == {}
    assert any("timeout" in line for line in warnings_said(caplog)), warnings_said(caplog)
    assert sending.sink.settings.timeout == Settings.resolve(environ={}).timeout
    assert_accepted(langsmith_receiver)


def test_objects_of_the_wrong_kind_for_retry_policy_and_session_are_said_and_replaced(caplog):
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        settings = Settings.resolve(retry_policy="fast", session=42, environ={})
    assert settings.retry_policy == RetryPolicy()
    assert settings.session is None
    said = warnings_said(caplog)
    assert any("retry_policy" in line for line in said), said
    assert any("session" in line for line in said), said
    # What is right stays as it was given.
    policy, session = RetryPolicy(initial_backoff=0.5), requests.Session()
    kept = Settings.resolve(retry_policy=policy, session=session, environ={})
    assert kept.retry_policy is policy and kept.session is session
    session.close()


def test_an_exporter_given_a_wrong_retry_policy_and_session_still_delivers(langsmith_receiver, traced, caplog):
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        sending = traced("exporter", **to(langsmith_receiver, retry_policy="fast", session=42))
        with sending.tracer.start_as_current_span("a"):
            pass
        sending.shutdown()
    assert [run["name"] for run in langsmith_receiver.runs.values()] == ["a"]
    said = warnings_said(caplog)
    assert any("retry_policy" in line for line in said) and any("session" in line for line in said), said
    assert_accepted(langsmith_receiver)


# -- 4. shutdown_grace against an endpoint that never answers ---------------------------------------------


@pytest.mark.parametrize(("grace", "bound"), [(0, 0.5), (0.5, 1.2)])
def test_shutdown_grace_bounds_shutdown_against_an_endpoint_that_never_answers(traced, caplog, grace, bound):
    with Silent() as silent:
        # Three times: a request not yet connected when the grace ran out had its whole timeout.
        for _ in range(3):
            sending = traced("exporter", endpoint=silent, api_key="k", shutdown_grace=grace)
            with sending.tracer.start_as_current_span("a"):
                pass
            caplog.clear()
            started = time.monotonic()
            with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
                sending.shutdown()
            took = time.monotonic() - started
            assert took < bound, f"shutdown_grace={grace}: shutdown took {took:.2f}s"
            # One line says what was lost; none promises to try again.
            said = warnings_said(caplog)
            assert len(said) == 1 and "lost 1 run" in said[0], said


# -- 5. GenAI messages given as a number, or as one message object ----------------------------------------

CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}


def input_messages(receiver: LangSmithReceiver, traced, front: str, messages) -> list:
    """The input messages of the run of one chat span whose ``gen_ai.input.messages`` is ``messages``."""
    sending = traced(front, **to(receiver))
    with sending.tracer.start_as_current_span("chat", attributes={**CHAT, "gen_ai.input.messages": messages}):
        pass
    sending.shutdown()
    (run,) = receiver.runs.values()
    found = (run.get("inputs") or {}).get("messages")
    assert isinstance(found, list) and len(found) == 1, run.get("inputs")
    assert_accepted(receiver)
    return found


@pytest.mark.parametrize("front", FRONTS)
def test_genai_messages_given_as_a_number_are_one_text_message_said_once(langsmith_receiver, traced, caplog, front):
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        (message,) = input_messages(langsmith_receiver, traced, front, 42)
    assert message["content"] == "42" and message.get("role") == "user", message
    said = warnings_said(caplog)
    assert len(said) == 1 and "messages" in said[0].lower(), said


@pytest.mark.parametrize("front", FRONTS)
def test_genai_messages_given_as_one_message_object_are_that_message(langsmith_receiver, traced, front):
    one = json.dumps({"role": "user", "parts": [{"type": "text", "content": "hi"}]})
    (message,) = input_messages(langsmith_receiver, traced, front, one)
    assert message["content"] == "hi" and message.get("role") == "user", message
