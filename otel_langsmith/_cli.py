"""The ``otel-langsmith`` command.

- ``doctor`` reads the same settings as the exporter (from the environment: there are no
  arguments here), shows each with where it came from, reaches ``GET /info``, and checks the API
  key with a harmless read (``GET /sessions?limit=1``, listing at most one project). Exit status 0
  when everything works, 1 otherwise.
- ``receive`` runs the local LangSmith-compatible receiver and prints each trace's run tree as it
  completes: a preview of what LangSmith would show, without an account.
- ``gateway`` receives OTLP/HTTP traces from any sender (``POST /v1/traces``) and sends them to
  LangSmith through the exporter's pipeline, until SIGTERM or SIGINT; then it drains or spools.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from ._settings import Settings
from ._spool import Spool
from ._transport import ServerInfo, Transport, describe
from ._version import __version__

# Seconds each of doctor's requests may take.
_CHECK_TIMEOUT = 15.0


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class _Report:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.problems = 0

    def say(self, mark: str, text: str) -> None:
        self._out.write(f"[{mark}] {text}\n")

    def problem(self, text: str) -> None:
        self.problems += 1
        self.say("FAIL", text)

    def end(self) -> bool:
        if self.problems:
            self._out.write(f"{self.problems} problem(s) found.\n")
            return False
        self._out.write("Everything looks right.\n")
        return True


def diagnose(out: TextIO) -> bool:
    """Write the findings to ``out``; True when nothing is wrong."""
    report = _Report(out)
    out.write(f"otel-langsmith {__version__}\n")
    settings = _settings(report)
    _show(settings, report)
    if not settings.tracing:
        report.problem("LANGSMITH_TRACING is false: nothing is sent to LangSmith (unset it, or set it to true)")
    problems = settings.problems()
    for problem in problems:
        report.problem(problem)
    if not problems:
        _check_endpoint(settings, report)
    if settings.spool_dir:
        _check_spool(settings, report)
    return report.end()


def _settings(report: _Report) -> Settings:
    collected = _Collect()
    settings_logger = logging.getLogger(Settings.__module__)
    settings_logger.addHandler(collected)
    try:
        settings = Settings.resolve()
    finally:
        settings_logger.removeHandler(collected)
    for message in collected.messages:
        report.problem(f"Configuration: {message}")
    return settings


def _show(settings: Settings, report: _Report) -> None:
    for name, shown, option in settings.described():
        variables = option.variables(name)
        source = next((variable for variable in variables if os.environ.get(variable, "").strip()), None)
        if source is not None:
            report.say("info", f"{name} = {shown} (from {source})")
    report.say("info", "Every other setting has its default")


def _check_endpoint(settings: Settings, report: _Report) -> None:
    endpoint = settings.endpoint.rstrip("/")
    if endpoint.endswith("/otel"):
        report.problem("LANGSMITH_ENDPOINT ends with /otel, LangSmith's OTLP endpoint: give the API base instead")
    if endpoint.split("//", 1)[-1].startswith("smith.langchain.com"):
        report.problem("LANGSMITH_ENDPOINT is the web app's address; the API is https://api.smith.langchain.com")
    transport = Transport(
        endpoint=settings.endpoint,
        api_key=settings.api_key,
        workspace_id=settings.workspace_id,
        timeout=_CHECK_TIMEOUT,
        session=settings.session,
    )
    if settings.api_key:
        report.say("ok", f"API key is set ({transport.masked_key})")
    else:
        report.problem("LANGSMITH_API_KEY is not set: LangSmith refuses runs without a key")
    if settings.workspace_id:
        report.say("info", f"Workspace {settings.workspace_id} (sent as X-Tenant-Id)")
    try:
        if _check_info(transport, report) and settings.api_key:
            _check_key(transport, report)
    finally:
        transport.close()


def _check_info(transport: Transport, report: _Report) -> bool:
    response = transport.request("GET", "/info", deadline=time.monotonic() + _CHECK_TIMEOUT)
    if response.status is None:
        report.problem(f"Cannot reach {transport.shown_endpoint}/info: {response.message}")
        return False
    if not response.ok or response.foreign:
        report.problem(
            f"{transport.shown_endpoint}/info answered {describe(response)}: is this a LangSmith API endpoint? "
            "(self-hosted: https://<host>/api/v1)"
        )
        return False
    info = transport.info(deadline=time.monotonic() + _CHECK_TIMEOUT) or ServerInfo()
    report.say("ok", f"Reached LangSmith: batches of {info.size_limit} runs, {info.size_limit_bytes} bytes")
    if info.zstd_compression_enabled:
        report.say("ok", "The server accepts zstd-compressed batches")
    if info == ServerInfo():
        report.say("info", "The server sent no batch limits: the defaults apply")
    return True


def _check_key(transport: Transport, report: _Report) -> None:
    check = transport.request("GET", "/sessions?limit=1", deadline=time.monotonic() + _CHECK_TIMEOUT)
    if check.ok:
        report.say("ok", "The API key is accepted")
    elif check.status in (401, 403):
        causes = "the key is wrong or revoked, or belongs to another region (US: api.smith.langchain.com, "
        causes += "EU: eu.api.smith.langchain.com)"
        if "workspace" in check.message:
            causes = "the key is organization-scoped: set LANGSMITH_WORKSPACE_ID"
        report.problem(f"LangSmith refused the API key (HTTP {check.status}): {causes}")
    else:
        report.problem(f"Checking the API key gave {describe(check)}")


def _check_spool(settings: Settings, report: _Report) -> None:
    assert settings.spool_dir is not None
    spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes)
    try:
        spool.check()
    except OSError as exc:
        report.problem(f"Spool directory {settings.spool_dir} cannot be used: {exc}")
        return
    report.say(
        "ok", f"Spool directory {settings.spool_dir} is private and writable ({spool.pending()} file(s) waiting)"
    )


def receive(port: int, out: TextIO, *, quiet_for: float = 1.0, stop: threading.Event | None = None) -> None:
    """Serve the local receiver on ``port`` and print each trace's run tree once it is complete:
    its root has ended and no run of it arrived for ``quiet_for`` seconds. Runs until ``stop``."""
    from .testing import LangSmithReceiver  # noqa: PLC0415 - the receiver only for this command

    stop = stop or threading.Event()
    with LangSmithReceiver(api_key=None, port=port) as receiver:
        out.write(f"Receiving LangSmith runs at {receiver.url}\n")
        out.write(f"  export LANGSMITH_ENDPOINT={receiver.url}  (any API key is accepted)\n\n")
        out.flush()
        printed: set[str] = set()
        seen: dict[str, tuple[int, float]] = {}
        while not stop.wait(0.2):
            runs = receiver.runs.values()
            now = time.monotonic()
            for trace_id, (count, ended) in _traces(runs).items():
                if trace_id in printed or not ended:
                    continue
                before = seen.get(trace_id)
                if before is None or before[0] != count:
                    seen[trace_id] = (count, now)
                elif now - before[1] >= quiet_for:
                    printed.add(trace_id)
                    out.write(receiver.format_tree(trace_id=trace_id) + "\n\n")
                    out.flush()


def _traces(runs: Iterable[dict[str, Any]]) -> dict[str, tuple[int, bool]]:
    """Per trace: how many runs arrived, and whether its root has ended."""
    found: dict[str, tuple[int, bool]] = {}
    for run in runs:
        count, ended = found.get(run["trace_id"], (0, False))
        if run.get("parent_run_id") is None:
            ended = run.get("end_time") is not None
        found[run["trace_id"]] = (count + 1, ended)
    return found


def gateway(arguments: argparse.Namespace, out: TextIO) -> int:
    """Serve until SIGTERM or SIGINT, then stop taking requests and drain; exit status 0."""
    try:
        import opentelemetry.proto  # noqa: F401, PLC0415 - the gateway's extra
    except ImportError:
        out.write("The gateway needs OTLP's definitions: pip install 'otel-langsmith[gateway]'\n")
        return 2
    from ._gateway import Gateway, Limits  # noqa: PLC0415 - only for this command
    from ._gateway_http import GatewayServer  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {name: getattr(arguments, name) for name in ("project", "spool_dir") if getattr(arguments, name)}
    limits = Limits(max_body_bytes=arguments.max_body_bytes, high_water_bytes=arguments.high_water_bytes)
    core = Gateway(Settings.resolve(**overrides), limits)
    try:
        server = GatewayServer(core, arguments.host, arguments.port)
        grpc_server = None if arguments.grpc_port is None else _grpc_server(core, arguments.host, arguments.grpc_port)
    except OSError as exc:
        out.write(f"The gateway cannot listen on {arguments.host}: {exc}\n")
        return 1
    # The handler only notes the signal: setting an Event there can deadlock with the main
    # thread's own wait on it; and the kernel may hand the signal to another thread, which does
    # not wake the main thread, so it looks every quarter of a second.
    signalled: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _: signalled.append(signum))
    server.start()
    core.send_spooled()  # once it listens: a gateway that cannot start leaves the spool to the next
    out.write(f"otel-langsmith gateway listening on {server.url}\n")
    if grpc_server is not None:
        out.write(f"otel-langsmith gateway listening for OTLP/gRPC on {grpc_server.start().address}\n")
    out.flush()
    report_at = time.monotonic() + arguments.report_every
    while not signalled:
        time.sleep(0.25)
        if time.monotonic() >= report_at:
            core.report()
            report_at = time.monotonic() + arguments.report_every
    logging.getLogger(__name__).info("gateway: stopping; draining what it holds (at most %ss)", arguments.drain)
    # Requests in progress get half the drain at most, so that a stalled sender cannot leave
    # nothing for sending what was taken.
    deadline = time.monotonic() + arguments.drain
    if grpc_server is not None:
        grpc_server.stop(arguments.drain / 2)
    server.stop(timeout=max(0.0, deadline - arguments.drain / 2 - time.monotonic()))
    core.close(max(0.0, deadline - time.monotonic()))
    # A signal during the interpreter's exit would find the default handlers back and kill it.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    return 0


def _grpc_server(core: Any, host: str, port: int) -> Any:
    try:
        from ._gateway_grpc import GrpcServer  # noqa: PLC0415 - gRPC only when asked for
    except ImportError:
        raise OSError("OTLP/gRPC needs grpcio: pip install 'otel-langsmith[gateway]'") from None
    return GrpcServer(core, host, port)


def _gateway_parser(commands: Any) -> None:
    from ._gateway import Limits  # noqa: PLC0415 - only for this command

    limits = Limits()
    parser = commands.add_parser(
        "gateway",
        help="receive OTLP/HTTP traces (POST /v1/traces) and send them to LangSmith",
        description="Settings come from the environment as for the exporter (LANGSMITH_API_KEY, "
        "LANGSMITH_ENDPOINT, LANGSMITH_PROJECT, OTEL_EXPORTER_LANGSMITH_*); a request's x-api-key and "
        "Langsmith-Project headers override the key and the project.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4318, help="the port (default: 4318; 0: a free one, printed)")
    parser.add_argument(
        "--grpc-port", type=int, help="also serve OTLP/gRPC on this port (4317 by convention; 0: a free one, printed)"
    )
    parser.add_argument("--project", help="the project of runs whose request and spans name none")
    parser.add_argument("--spool-dir", help="where undelivered runs survive a restart")
    parser.add_argument("--max-body-bytes", type=int, default=limits.max_body_bytes, help="413 beyond")
    parser.add_argument(
        "--high-water-bytes",
        type=int,
        default=limits.high_water_bytes,
        help="bytes held for LangSmith past which requests get 503 and Retry-After",
    )
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to drain at SIGTERM (default: 30)")
    parser.add_argument("--report-every", type=float, default=60.0, help="seconds between count lines")


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="otel-langsmith", description="otel-langsmith tools")
    parser.add_argument("--version", action="version", version=f"otel-langsmith {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check the configuration and the connection to LangSmith")
    receiving = commands.add_parser("receive", help="a local LangSmith-compatible receiver that prints run trees")
    receiving.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: a free one)")
    _gateway_parser(commands)
    arguments = parser.parse_args(argv)
    if arguments.command == "gateway":
        return gateway(arguments, out)
    if arguments.command == "receive":
        try:
            receive(arguments.port, out)
        except KeyboardInterrupt:
            pass
        return 0
    return 0 if diagnose(out) else 1


if __name__ == "__main__":
    sys.exit(main())
