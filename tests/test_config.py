import logging

import pytest

from otel_langsmith import LangSmithSpanExporter
from otel_langsmith._settings import DEFAULT_ENDPOINT, Settings


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
    with caplog.at_level(logging.WARNING, logger="otel_langsmith.config"):
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
    exporter.shutdown()
