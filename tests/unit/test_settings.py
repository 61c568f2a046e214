"""Settings: declared once, resolved from arguments and the environment, shown without secrets."""

import dataclasses
import logging
import re
import typing
from pathlib import Path

import pytest

from otel_langsmith import LangSmithSpanExporter, LangSmithSpanProcessor, RetryPolicy
from otel_langsmith._settings import DEFAULT_ENDPOINT, Options, Settings, settings_table


def test_defaults_with_an_empty_environment():
    settings = Settings.resolve(environ={})
    assert settings.api_key is None
    assert settings.endpoint == DEFAULT_ENDPOINT == "https://api.smith.langchain.com"
    assert settings.project == "default"
    assert settings.workspace_id is None
    assert settings.timeout == 10.0
    assert settings.parent_wait == 300.0


def test_langsmith_variables_win_over_langchain_spellings():
    environ = {
        "LANGSMITH_API_KEY": "ls-key",
        "LANGCHAIN_API_KEY": "lc-key",
        "LANGCHAIN_ENDPOINT": "https://lc.example/api/v1/",
        "LANGCHAIN_PROJECT": "lc-project",
        "LANGCHAIN_WORKSPACE_ID": "ws-1",
    }
    settings = Settings.resolve(environ=environ)
    assert settings.api_key == "ls-key"
    assert settings.endpoint == "https://lc.example/api/v1"
    assert settings.project == "lc-project"
    assert settings.workspace_id == "ws-1"


def test_arguments_win_over_the_environment():
    environ = {"LANGSMITH_PROJECT": "env", "OTEL_EXPORTER_LANGSMITH_TIMEOUT": "3", "LANGSMITH_ENDPOINT": "http://e"}
    settings = Settings.resolve(project="arg", timeout=7, endpoint="http://a/", environ=environ)
    assert (settings.project, settings.timeout, settings.endpoint) == ("arg", 7.0, "http://a")
    assert Settings.resolve(environ=environ).timeout == 3.0


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "default"),
    [
        ("OTEL_EXPORTER_LANGSMITH_TIMEOUT", "ten", "timeout", 10.0),
        ("OTEL_EXPORTER_LANGSMITH_TIMEOUT", "-1", "timeout", 10.0),
        ("OTEL_EXPORTER_LANGSMITH_PARENT_WAIT", "nan", "parent_wait", 300.0),
        ("OTEL_EXPORTER_LANGSMITH_MAX_PENDING_SPANS", "1.5", "max_pending_spans", 20_000),
        ("OTEL_EXPORTER_LANGSMITH_MAX_PENDING_BYTES", "0", "max_pending_bytes", 64 * 1024 * 1024),
    ],
)
def test_unparsable_values_are_logged_and_replaced_by_the_default(caplog, variable, raw, attribute, default):
    with caplog.at_level(logging.WARNING, logger="otel_langsmith._settings"):
        settings = Settings.resolve(environ={variable: raw})
    assert getattr(settings, attribute) == default
    assert variable in caplog.text and repr(raw) in caplog.text


def test_the_api_key_never_shows_in_a_repr():
    settings = Settings.resolve(api_key="lsv2_sk_secret", environ={})
    assert "lsv2_sk_secret" not in repr(settings)
    assert "api_key=<set>" in repr(settings)


def test_the_exporter_reads_the_environment_and_does_no_io(monkeypatch):
    # Port 9 on loopback is closed: any request in the constructor would fail loudly or hang.
    monkeypatch.setenv("LANGSMITH_ENDPOINT", "http://127.0.0.1:9/api/v1")
    monkeypatch.setenv("LANGSMITH_PROJECT", "from-env")
    monkeypatch.setenv("OTEL_EXPORTER_LANGSMITH_PARENT_WAIT", "2.5")
    exporter = LangSmithSpanExporter()
    assert exporter.settings.endpoint == "http://127.0.0.1:9/api/v1"
    assert exporter.settings.project == "from-env"
    assert exporter.settings.parent_wait == 2.5
    assert exporter.stats().requests == 0
    exporter.shutdown(timeout_millis=0)


def test_the_typed_keywords_are_the_settings_fields():
    # A new option is a field of Settings; Options (the fronts' keywords for type checkers) follows it.
    fields = {field.name: field.type for field in dataclasses.fields(Settings)}
    hints = typing.get_type_hints(Options)
    resolved = typing.get_type_hints(Settings)
    assert list(Options.__annotations__) == list(fields), "Options must list the fields of Settings, in order"
    assert {name: hints[name] for name in fields} == {name: resolved[name] for name in fields}


@pytest.mark.parametrize("front", [LangSmithSpanExporter, LangSmithSpanProcessor])
def test_both_fronts_take_every_option_and_refuse_unknown_ones(front):
    values = {
        "tracing": True,
        "api_key": "k",
        "endpoint": "http://127.0.0.1:9",
        "project": "p",
        "workspace_id": "w",
        "timeout": 3.0,
        "shutdown_grace": 1.0,
        "compression": "gzip",
        "max_queue_bytes": 1000,
        "spool_dir": None,
        "spool_max_bytes": 2000,
        "parent_wait": 4.0,
        "max_pending_spans": 5,
        "max_pending_bytes": 6000,
        "flush_interval": 0.5,
        "live_after": 2.0,
        "open_span_ttl": 70.0,
        "span_filter": "llm",
        "hide_inputs": True,
        "hide_outputs": True,
        "process_inputs": lambda value: value,
        "process_outputs": None,
        "retry_policy": RetryPolicy(initial_backoff=2),
        "session": None,
    }
    assert set(values) == {field.name for field in dataclasses.fields(Settings)}
    made = front(**values)
    for name, value in values.items():
        assert getattr(made.settings, name) == value, name
    made.shutdown()
    with pytest.raises(TypeError, match="export_timeout"):
        front(export_timeout=3)


def test_the_repr_shows_every_field_and_masks_secrets():
    settings = Settings.resolve(
        api_key="lsv2_sk_secret", endpoint="https://user:hunter2@example.com/api/v1", environ={}
    )
    shown = repr(settings)
    names = re.findall(r"(\w+)=", shown)
    assert names == [field.name for field in dataclasses.fields(Settings)]
    assert "lsv2_sk_secret" not in shown and "hunter2" not in shown
    assert "api_key=<set>" in shown and "user:***@example.com" in shown


def test_the_readme_table_is_the_settings_table():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start, end = readme.index("<!-- settings -->"), readme.index("<!-- /settings -->")
    assert readme[start + len("<!-- settings -->") : end].strip() == settings_table(), (
        "README's configuration table is out of date; replace it with:\n" + settings_table()
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("'lsv2-key'", "lsv2-key"), (' "lsv2-key" ', "lsv2-key"), ("lsv2-key", "lsv2-key")],
)
def test_quotes_around_the_key_are_stripped_like_the_endpoints(raw, expected):
    settings = Settings.resolve(environ={"LANGSMITH_API_KEY": raw, "LANGSMITH_ENDPOINT": "'https://h/api/v1/'"})
    assert settings.api_key == expected
    assert settings.endpoint == "https://h/api/v1"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"endpoint": "not a url"}, "is not an http(s) URL"),
        ({"endpoint": "ftp://example.com"}, "is not an http(s) URL"),
        ({"endpoint": "http://example.com:port"}, "invalid port"),
        ({"api_key": "lsv2-κλειδί"}, "characters an HTTP header cannot carry"),
    ],
)
def test_settings_that_make_sending_impossible_are_named(options, problem):
    (found,) = Settings.resolve(environ={}, **options).problems()
    assert problem in found
    assert "κλειδί" not in found
