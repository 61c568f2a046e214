"""Shared by the tests that start a process of their own."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from otel_langsmith import LangSmithSpanExporter, LangSmithSpanProcessor
from otel_langsmith._pipeline import Pipeline
from otel_langsmith._settings import Settings


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any LangSmith or OpenTelemetry setting, plus ``extra``:
    a child configured by the test alone, whatever the developer's shell exports."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "OTEL_"))}
    environment.update(extra)
    return environment


def run_child(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 120, cwd: str | None = None):
    """Run a process to its end and keep what it printed; ``env`` defaults to :func:`child_environment`."""
    return subprocess.run(
        args,
        env=child_environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


class FakeClock:
    """A monotonic clock that moves only when told: timeouts are seen without waiting for them."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def front_with_clock(front_class, clock, **options):
    """A ``LangSmithSpanExporter`` or ``LangSmithSpanProcessor`` whose pipeline runs on ``clock``."""
    front = front_class.__new__(front_class)
    front._pipeline = Pipeline(Settings.resolve(**options), name=front_class.__name__, clock=clock)
    return front


def closed_port_url() -> str:
    """A loopback address nothing listens on: every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class Silent:
    """An endpoint on loopback that accepts connections and never answers."""

    def __enter__(self) -> str:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


def ended_spans(body) -> list:
    """The spans ``body(tracer)`` ended, recorded by the real SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    body(provider.get_tracer("tests"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def in_threads(work: Callable[[int], object], count: int) -> list[BaseException]:
    """``work(index)`` on ``count`` threads at once, joined; what they raised (the test asserts it)."""
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


class GatewayProcess:
    """``otel-langsmith gateway --port 0`` in a process of its own, configured by ``env`` alone.

    ``url`` is where it listens (read off its first line of output); its output is read on
    threads, so a gateway that logs a lot never blocks on a full pipe. :meth:`stop` sends SIGTERM
    and returns its exit status and what it logged."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self._args = ["--port", "0", *args]
        self._env = child_environment(**env)
        self.url = ""
        #: host:port of OTLP/gRPC, with ``--grpc-port``.
        self.grpc_address = ""
        self.process: subprocess.Popen[str] | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers: list[threading.Thread] = []

    def __enter__(self) -> GatewayProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "otel_langsmith._cli", "gateway", *self._args],
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        self.stdout.append(first)
        if "--grpc-port" in self._args and "listening on" in first:
            second = self.process.stdout.readline()
            self.stdout.append(second)
            self.grpc_address = second.rstrip().rpartition(" ")[2]
        for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            reader = threading.Thread(target=lines.extend, args=(stream,), daemon=True)
            reader.start()
            self._readers.append(reader)
        found = re.search(r"listening on (http://\S+)", first)
        if found is None:
            self.process.kill()
            self._join()
            raise AssertionError(f"the gateway did not start: {self.output()}")
        self.url = found.group(1)
        return self

    def output(self) -> str:
        return f"stdout:\n{''.join(self.stdout)}\nstderr:\n{''.join(self.stderr)}"

    def stop(self, timeout: float = 60) -> tuple[int, str]:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self._join()
            raise AssertionError(f"the gateway did not exit within {timeout}s of SIGTERM: {self.output()}") from None
        self._join()
        return self.process.returncode, "".join(self.stderr)

    def _join(self) -> None:
        assert self.process is not None
        self.process.wait()
        for reader in self._readers:
            reader.join(5)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self._join()


def rss(pid: int) -> int:
    """A process's resident memory now, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def address(url: str) -> tuple[str, int]:
    """(host, port) of an ``http://host:port`` URL."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def padded(message: bytes, size: int) -> bytes:
    """A protobuf message grown to exactly ``size`` bytes by an unknown field 15 of zeros (which a
    reader skips): a request at a byte limit."""
    need = size - len(message)
    length = need - 1 - len(_varint(need))
    length = need - 1 - len(_varint(length))
    grown = message + b"\x7a" + _varint(length) + b"\x00" * length
    assert len(grown) == size
    return grown


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


#: When the spans :func:`otlp_request` makes start (a fixed moment: the same runs every time).
OTLP_START_NS = 1_700_000_000_000_000_000


def otlp_request(spans, *, pad: int = 0) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` of (trace id, span id, parent span id or 0) spans, each
    a millisecond long, with ``pad`` bytes of attribute each."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for trace_id, span_id, parent_id in spans:
        span = scope.spans.add()
        span.trace_id, span.span_id = trace_id.to_bytes(16, "big"), span_id.to_bytes(8, "big")
        if parent_id:
            span.parent_span_id = parent_id.to_bytes(8, "big")
        span.name = f"span-{span_id:x}"
        span.start_time_unix_nano = OTLP_START_NS + span_id
        span.end_time_unix_nano = OTLP_START_NS + span_id + 1_000_000
        if pad:
            attribute = span.attributes.add()
            attribute.key, attribute.value.string_value = "pad", "x" * pad
    return request


class Traced:
    """A real ``TracerProvider`` sending through one front: a ``LangSmithSpanExporter`` behind a
    ``BatchSpanProcessor`` (``exporter``), or a ``LangSmithSpanProcessor`` (``processor``)."""

    def __init__(self, front: str, *, id_generator: IdGenerator | None = None, **options) -> None:
        self.provider = TracerProvider(id_generator=id_generator)
        self.sink: LangSmithSpanExporter | LangSmithSpanProcessor
        if front == "exporter":
            self.sink = LangSmithSpanExporter(**options)
            self.provider.add_span_processor(BatchSpanProcessor(self.sink))
        else:
            self.sink = LangSmithSpanProcessor(**options)
            self.provider.add_span_processor(self.sink)
        self.tracer = self.provider.get_tracer("attack")
        self.closed = False

    def flush(self) -> None:
        """Everything ended so far delivered (the batch processor hands it over, the front sends it)."""
        assert self.provider.force_flush(10_000)
        assert self.sink.force_flush(10_000)

    def shutdown(self) -> None:
        if not self.closed:
            self.closed = True
            self.provider.shutdown()
