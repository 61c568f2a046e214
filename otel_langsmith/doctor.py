"""``otel-langsmith doctor``: check the configuration and the connection, and say what is wrong.

It reads the same settings as the exporter (arguments are not involved: only the environment),
reaches ``GET /info``, and checks the API key with a harmless read (``GET /sessions?limit=1``,
listing at most one project). Exit status 0 when everything works, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import TextIO

from .config import Settings
from .transport import ServerInfo, Transport
from .version import __version__


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def diagnose(out: TextIO) -> bool:
    """Write the findings to ``out``; True when nothing is wrong."""
    problems = 0

    def say(mark: str, text: str) -> None:
        out.write(f"[{mark}] {text}\n")

    def problem(text: str) -> None:
        nonlocal problems
        problems += 1
        say("FAIL", text)

    collected = _Collect()
    config_logger = logging.getLogger("otel_langsmith.config")
    config_logger.addHandler(collected)
    try:
        settings = Settings.resolve()
    finally:
        config_logger.removeHandler(collected)
    out.write(f"otel-langsmith {__version__}\n")
    for message in collected.messages:
        problem(f"Configuration: {message}")

    transport = Transport(
        endpoint=settings.endpoint, api_key=settings.api_key, workspace_id=settings.workspace_id, timeout=10.0
    )
    say("info", f"Endpoint {settings.endpoint}, project {settings.project!r}")
    if not settings.endpoint.startswith(("http://", "https://")):
        problem(f"LANGSMITH_ENDPOINT {settings.endpoint!r} is not an http(s) URL")
        return False
    if settings.endpoint.rstrip("/").endswith("/otel"):
        problem("LANGSMITH_ENDPOINT ends with /otel, LangSmith's OTLP endpoint: give the API base instead")
    if settings.endpoint.split("//", 1)[1].startswith("smith.langchain.com"):
        problem("LANGSMITH_ENDPOINT is the web app's address; the API is https://api.smith.langchain.com")
    if settings.api_key:
        say("ok", f"API key is set ({transport.masked_key})")
    else:
        problem("LANGSMITH_API_KEY is not set: LangSmith refuses runs without a key")
    if settings.workspace_id:
        say("info", f"Workspace {settings.workspace_id} (sent as X-Tenant-Id)")

    response = transport.get("/info")
    if response.status is None:
        problem(f"Cannot reach {settings.endpoint}/info: {response.message}")
        return False
    if not response.ok:
        problem(
            f"{settings.endpoint}/info answered HTTP {response.status}: is this a LangSmith API endpoint? "
            "(self-hosted: https://<host>/api/v1)"
        )
    else:
        info = transport.info()
        say("ok", f"Reached LangSmith: batches of {info.size_limit} runs, {info.size_limit_bytes} bytes")
        if info.zstd_compression_enabled:
            say("ok", "The server accepts zstd-compressed batches")
        if info == ServerInfo():
            say("info", "The server sent no batch limits: the defaults apply")

    if settings.api_key:
        check = transport.get("/sessions?limit=1")
        if check.ok:
            say("ok", "The API key is accepted")
        elif check.status in (401, 403):
            causes = "the key is wrong or revoked, or belongs to another region (US: api.smith.langchain.com, "
            causes += "EU: eu.api.smith.langchain.com)"
            if "workspace" in check.message:
                causes = "the key is organization-scoped: set LANGSMITH_WORKSPACE_ID"
            problem(f"LangSmith refused the API key (HTTP {check.status}): {causes}")
        else:
            problem(f"Checking the API key gave {check.status or 'no answer'}: {check.message}")
    transport.close()

    if settings.spool_dir:
        try:
            os.makedirs(settings.spool_dir, exist_ok=True)
            with tempfile.TemporaryFile(dir=settings.spool_dir):
                pass
            say("ok", f"Spool directory {settings.spool_dir} is writable")
        except OSError as exc:
            problem(f"Spool directory {settings.spool_dir} is not writable: {exc}")

    if problems:
        out.write(f"{problems} problem(s) found.\n")
        return False
    out.write("Everything looks right.\n")
    return True


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="otel-langsmith", description="otel-langsmith tools")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check the configuration and the connection to LangSmith")
    parser.parse_args(argv)
    return 0 if diagnose(out) else 1


if __name__ == "__main__":
    sys.exit(main())
