"""``otel-langsmith doctor``, run as a user runs it."""

import socket
import subprocess
import sys
from pathlib import Path

from helpers import child_environment, run_child

from otel_langsmith.testing import LangSmithReceiver

DOCTOR = Path(sys.executable).parent / "otel-langsmith"


def doctor(**env: str) -> subprocess.CompletedProcess:
    return run_child([str(DOCTOR), "doctor"], env=child_environment(**env), timeout=60)


def test_a_working_setup(langsmith_receiver, tmp_path):
    result = doctor(
        LANGSMITH_ENDPOINT=langsmith_receiver.url,
        LANGSMITH_API_KEY=langsmith_receiver.api_key,
        OTEL_EXPORTER_LANGSMITH_SPOOL_DIR=str(tmp_path / "spool"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok] The API key is accepted" in result.stdout
    assert "[ok] Reached LangSmith: batches of 100 runs" in result.stdout
    assert "Spool directory" in result.stdout and "Everything looks right." in result.stdout
    assert langsmith_receiver.api_key not in result.stdout + result.stderr


def test_a_wrong_key_is_named_and_masked():
    with LangSmithReceiver(api_key="the-right-one") as receiver:
        result = doctor(LANGSMITH_ENDPOINT=receiver.url, LANGSMITH_API_KEY="lsv2_pt_wrongwrongwrong1234")
    assert result.returncode == 1
    assert "LangSmith refused the API key (HTTP 401)" in result.stdout and "region" in result.stdout
    assert "lsv2_...1234" in result.stdout and "wrongwrongwrong" not in result.stdout


def test_an_unreachable_endpoint_and_bad_settings():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = doctor(LANGSMITH_ENDPOINT=f"http://127.0.0.1:{port}", OTEL_EXPORTER_LANGSMITH_TIMEOUT="soon")
    assert result.returncode == 1
    assert "OTEL_EXPORTER_LANGSMITH_TIMEOUT" in result.stdout
    assert "LANGSMITH_API_KEY is not set" in result.stdout
    assert f"Cannot reach http://127.0.0.1:{port}/info" in result.stdout
