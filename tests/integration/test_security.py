"""Security promises, each attacked at its worst moment: the API key never follows a redirect to
another host, the spool is private and an untrusted spool directory is refused (and never read), a
password in the endpoint is never logged, and hostile propagation headers are bounded and harmless
from ``extract`` to the runs LangSmith receives.

Every server here is real and listens on 127.0.0.1 only."""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_langsmith import LangSmithPropagator, LangSmithSpanExporter, LangSmithSpanProcessor, RetryPolicy
from otel_langsmith import _ids as ids
from otel_langsmith import _propagation as propagation

API_KEY = "lsv2_pt_secretsecret1234"
PASSWORD = "hunter2"
# Short waits, so that a test never sits out a default backoff.
FAST = RetryPolicy(initial_backoff=0.05, max_backoff=0.2, jitter=0.0)
SEC = 1_000_000  # microseconds


# -- spans and runs -----------------------------------------------------------------------------------


def make_spans(count: int) -> list:
    """``count`` ended root spans from the real SDK (one trace each, so no waiting for parents)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("security")
    for index in range(count):
        with tracer.start_as_current_span(f"span-{index}"):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def run_ids(spans) -> set[str]:
    return {ids.root_run_id(span.context.trace_id) for span in spans}


def now_us() -> int:
    return time.time_ns() // 1_000


def closed_port() -> int:
    """A loopback port nothing listens on: every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured line, with its exception and traceback if any."""
    return "\n".join([record.getMessage() for record in caplog.records] + [caplog.text])


# -- a small HTTP server that records what reaches it ---------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


Answer = tuple[int, dict[str, str], bytes]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        server: Server = self.server.owner  # type: ignore[attr-defined]
        with server.lock:
            server.seen.append(seen)
        status, headers, payload = server.answer(seen)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _handle


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 answering with ``answer``; ``seen`` is every request it got."""

    def __init__(self, answer: Callable[[Seen], Answer], *, tls: tuple[Path, Path] | None = None) -> None:
        self.answer = answer
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self._server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.port = self._server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests(self) -> list[Seen]:
        with self.lock:
            return list(self.seen)


def accept_everything(seen: Seen) -> Answer:
    """What a naive server would do with whatever reaches it."""
    return (202 if seen.method == "POST" else 200), {"Content-Type": "application/json"}, b"{}"


def redirect_to(base: str, *, post_status: int = 307, get_status: int = 302) -> Callable[[Seen], Answer]:
    """Answer every request with a redirect to the same path under ``base``."""

    def answer(seen: Seen) -> Answer:
        status = post_status if seen.method == "POST" else get_status
        return status, {"Location": f"{base}{seen.path}"}, b""

    return answer


def forward(seen: Seen, port: int) -> Answer:
    """The request, as it came, to the server on ``port``; its answer, as it came back."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {k: v for k, v in seen.headers.items() if k not in ("host", "connection")}
        connection.request(seen.method, seen.path, body=seen.body or None, headers=headers)
        response = connection.getresponse()
        return response.status, {"Content-Type": response.getheader("Content-Type", "")}, response.read()
    finally:
        connection.close()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), made by the ``openssl`` command."""
    if shutil.which("openssl") is None:
        pytest.fail("needs the openssl command (Debian: openssl) to make a certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


# -- spool helpers --------------------------------------------------------------------------------------


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_real_batch(directory: Path, count: int) -> set[str]:
    """Spool ``count`` real runs into ``directory`` (a trusted spool, endpoint down); their ids."""
    spans = make_spans(count)
    exporter = LangSmithSpanExporter(
        endpoint=f"http://127.0.0.1:{closed_port()}", api_key=API_KEY, spool_dir=str(directory), shutdown_grace=0.2
    )
    exporter.export(spans)
    exporter.force_flush(5_000)
    exporter.shutdown(5_000)
    assert exporter.stats().runs_spooled == count
    return run_ids(spans)


def untrusted_directory(path: Path, kind: str) -> Path:
    path.mkdir()
    if kind == "writable by others":
        os.chmod(path, 0o777)
    else:  # owned by another user, private to that user
        if os.geteuid() != 0:
            pytest.skip("giving a directory to another user needs root")
        os.chmod(path, 0o700)
        os.chown(path, 65534, 65534)
    return path


# -- propagation helpers --------------------------------------------------------------------------------


def trace_header(*starts_us: int) -> tuple[str, list[str]]:
    """A ``langsmith-trace`` value with one segment per start time (root first), and its run ids."""
    run_ids_ = [str(uuid.uuid4()) for _ in starts_us]
    return ".".join(ids.segment(us, run_id) for us, run_id in zip(starts_us, run_ids_, strict=True)), run_ids_


def baggage(metadata: str, tags: str = "", project: str = "") -> str:
    items = ["langsmith-metadata=" + quote(metadata)]
    if tags:
        items.append("langsmith-tags=" + quote(tags))
    if project:
        items.append("langsmith-project=" + quote(project))
    return ",".join(items)


def in_2099() -> int:
    return int(datetime(2099, 1, 1, tzinfo=timezone.utc).timestamp()) * SEC


def trace_under(receiver, context) -> tuple[bool, object]:
    """A request handler span and one child, started under ``context`` with a real processor
    pointed at ``receiver``; (the processor's flush result, its stats)."""
    processor = LangSmithSpanProcessor(endpoint=receiver.url, api_key=receiver.api_key, retry_policy=FAST)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("security")
    with tracer.start_as_current_span("handler", context=context), tracer.start_as_current_span("step"):
        pass
    flushed = processor.force_flush(10_000)
    stats = processor.stats()
    provider.shutdown()
    return flushed, stats


@pytest.fixture
def quiet_throttle() -> Iterator[None]:
    """The propagator's warnings are throttled process-wide: start each test with fresh throttles."""
    propagation._throttles.clear()
    yield
    propagation._throttles.clear()


# -- 1. the API key never follows a redirect to another host --------------------------------------------


@pytest.mark.parametrize("post_status", [307, 308])
@pytest.mark.parametrize("target_host", ["127.0.0.1", "localhost"])
def test_the_api_key_never_follows_a_redirect_to_another_host(caplog, post_status, target_host):
    with Server(accept_everything) as elsewhere:
        target = f"http://{target_host}:{elsewhere.port}"
        with Server(redirect_to(target, post_status=post_status)) as endpoint:
            exporter = LangSmithSpanExporter(endpoint=endpoint.url, api_key=API_KEY, retry_policy=FAST)
            spans = make_spans(3)
            with caplog.at_level(logging.DEBUG, logger="otel_langsmith"):
                assert exporter.export(spans) is SpanExportResult.SUCCESS
                assert exporter.force_flush(10_000) is False  # the runs were lost, and the flush says so
                exporter.shutdown(5_000)
            # The key went to the configured endpoint, and nowhere else.
            assert any(s.method == "POST" and s.headers.get("x-api-key") == API_KEY for s in endpoint.requests())
    assert [s for s in elsewhere.requests() if "x-api-key" in s.headers] == []
    assert elsewhere.requests() == []
    stats = exporter.stats()
    assert stats.runs_exported == 0 and stats.runs_spooled == 0
    assert stats.dropped == {"not_langsmith": 3}
    refusals = [
        r for r in caplog.records if r.levelno >= logging.ERROR and "another host: not followed" in r.getMessage()
    ]
    assert refusals, [r.getMessage() for r in caplog.records]
    assert f"{target_host}:{elsewhere.port}" in refusals[0].getMessage()
    assert API_KEY not in logged(caplog)


def test_a_same_host_redirect_is_followed_and_the_runs_arrive(langsmith_receiver):
    """A self-hosted LangSmith behind a path that moved: ``/info`` answers 302 (relative Location),
    writes 307 (absolute, same host and port); the moved paths forward to a real receiver."""

    def answer(seen: Seen) -> Answer:
        if seen.path.startswith("/moved/"):
            return forward(seen, int(langsmith_receiver.url.rsplit(":", 1)[1]))
        if seen.method == "POST":
            return 307, {"Location": f"http://{seen.headers['host']}/moved{seen.path}"}, b""
        return 302, {"Location": f"/moved{seen.path}"}, b""

    spans = make_spans(3)
    with Server(answer) as endpoint:
        exporter = LangSmithSpanExporter(endpoint=endpoint.url, api_key=langsmith_receiver.api_key)
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert exporter.force_flush(10_000) is True
        exporter.shutdown(5_000)
        paths = [(s.method, s.path) for s in endpoint.requests()]
    assert ("POST", "/runs/multipart") in paths and ("POST", "/moved/runs/multipart") in paths
    assert ("GET", "/moved/info") in paths
    assert set(langsmith_receiver.runs) == run_ids(spans)
    assert langsmith_receiver.rejected == []
    stats = exporter.stats()
    assert stats.runs_exported == 3 and stats.runs_dropped == 0


def test_an_https_upgrade_redirect_does_not_take_the_key_to_another_port(tmp_path, caplog):
    """``http://host:A`` answering 307 to ``https://host:B``: another port is another service (an
    origin is scheme, host and port), so the key must not go there. ``requests`` itself strips
    credentials on such a redirect; it allows an http->https upgrade only between default ports.

    Server B holds a certificate the session trusts (as a company's internal CA would be), so that
    what reaches it can be seen."""
    cert, key = self_signed_certificate(tmp_path)
    session = requests.Session()
    session.verify = str(cert)
    session.trust_env = False  # REQUESTS_CA_BUNDLE and the like would override ``verify``
    with Server(accept_everything, tls=(cert, key)) as other_port:
        target = other_port.url
        # The control: this session does reach server B, so nothing below passes for want of TLS.
        assert session.get(f"{target}/probe", timeout=5).status_code == 200

        def answer(seen: Seen) -> Answer:
            if seen.method == "GET":
                return 200, {"Content-Type": "application/json"}, b"{}"
            return 307, {"Location": f"{target}{seen.path}"}, b""

        with Server(answer) as endpoint:
            exporter = LangSmithSpanExporter(endpoint=endpoint.url, api_key=API_KEY, session=session)
            with caplog.at_level(logging.DEBUG, logger="otel_langsmith"):
                exporter.export(make_spans(2))
                exporter.force_flush(10_000)
                exporter.shutdown(5_000)
    carried_key = [(s.method, s.path) for s in other_port.requests() if s.headers.get("x-api-key") == API_KEY]
    assert carried_key == [], f"the API key reached {other_port.url}, another port than the endpoint's"
    assert exporter.stats().runs_exported == 0


# -- 2. spool files are private ----------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask 022", "umask 000"])
@pytest.mark.parametrize("existing", [None, 0o755], ids=["created", "existing 0755"])
def test_spool_files_are_private_whatever_the_umask(tmp_path, mask, existing):
    spool = tmp_path / "spool"
    if existing is not None:
        spool.mkdir()
        os.chmod(spool, existing)  # readable by everyone: tightened, since runs hold prompts and answers
    with umask(mask):
        exporter = LangSmithSpanExporter(
            endpoint=f"http://127.0.0.1:{closed_port()}", api_key=API_KEY, spool_dir=str(spool), shutdown_grace=0.2
        )
        assert exporter.export(make_spans(3)) is SpanExportResult.SUCCESS
        assert exporter.force_flush(5_000) is False  # the endpoint is down
        batches = sorted(spool.glob("*.batch"))
        everything = [p for p in spool.rglob("*")]
        assert mode(spool) == 0o700
        assert batches, everything
        for path in everything:
            expected = 0o700 if path.is_dir() else 0o600
            assert mode(path) == expected, f"{path.name}: {oct(mode(path))}"
        assert exporter.stats().runs_spooled == 3
        exporter.shutdown(5_000)
    for path in spool.rglob("*"):  # what shutdown left is as private
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path.name


def test_directories_made_for_the_spool_are_not_writable_by_others(tmp_path):
    """``spool_dir`` in directories that do not exist yet: the package makes them, and under umask
    000 a directory it makes writable by everyone would let another user swap the spool for their own."""
    spool = tmp_path / "deep" / "er" / "spool"
    with umask(0o000):
        exporter = LangSmithSpanExporter(
            endpoint=f"http://127.0.0.1:{closed_port()}", api_key=API_KEY, spool_dir=str(spool), shutdown_grace=0.2
        )
        exporter.export(make_spans(1))
        exporter.force_flush(5_000)
        exporter.shutdown(5_000)
    assert list(spool.glob("*.batch"))
    for made in (tmp_path / "deep", tmp_path / "deep" / "er", spool):
        assert mode(made) & 0o022 == 0, f"{made} is {oct(mode(made))}"


# -- 3. an untrusted spool directory is refused, and never read ---------------------------------------------


@pytest.mark.parametrize("dir_mode", [0o777, 0o775, 0o1777], ids=oct)
def test_a_spool_directory_others_can_write_is_refused(tmp_path, caplog, dir_mode):
    spool = tmp_path / "spool"
    spool.mkdir()
    os.chmod(spool, dir_mode)
    exporter = LangSmithSpanExporter(
        endpoint=f"http://127.0.0.1:{closed_port()}", api_key=API_KEY, spool_dir=str(spool), shutdown_grace=0.2
    )
    with caplog.at_level(logging.INFO, logger="otel_langsmith"):
        assert exporter.export(make_spans(3)) is SpanExportResult.SUCCESS
        assert exporter.force_flush(5_000) is False
    stats = exporter.stats()
    assert stats.runs_spooled == 0
    assert stats.queued_runs == 3  # kept in memory instead
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(str(spool) in line and f"chmod 700 {spool}" in line for line in errors), errors
    assert list(spool.iterdir()) == []
    assert mode(spool) == dir_mode  # refused, not silently "fixed" under another user's feet
    exporter.shutdown(5_000)
    assert list(spool.iterdir()) == []
    assert exporter.stats().dropped == {"shutdown": 3}


def test_a_spool_directory_of_another_user_is_refused_and_never_written(tmp_path, caplog):
    spool = untrusted_directory(tmp_path / "spool", "owned by another user")
    exporter = LangSmithSpanExporter(
        endpoint=f"http://127.0.0.1:{closed_port()}", api_key=API_KEY, spool_dir=str(spool), shutdown_grace=0.2
    )
    with caplog.at_level(logging.INFO, logger="otel_langsmith"):
        exporter.export(make_spans(3))
        assert exporter.force_flush(5_000) is False
        assert list(spool.iterdir()) == []
        exporter.export(make_spans(2))  # while LangSmith is known to be down: straight to the spool, if any
        exporter.force_flush(5_000)
        exporter.shutdown(5_000)  # parks what is left: in the spool, if any
    assert list(spool.iterdir()) == []
    stats = exporter.stats()
    assert stats.runs_spooled == 0 and stats.dropped == {"shutdown": 5}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(str(spool) in line and "another user" in line for line in errors), errors


@pytest.mark.parametrize("kind", ["writable by others", "owned by another user"])
def test_a_batch_planted_in_an_untrusted_spool_is_never_sent(langsmith_receiver, tmp_path, kind):
    """Real runs, in a real spool file, that the receiver would accept: planted where this process
    is told to spool, they must never be sent with its key."""
    trusted = tmp_path / "trusted"
    planted = write_real_batch(trusted, 3)
    spool = untrusted_directory(tmp_path / "spool", kind)
    for path in trusted.glob("*.batch"):
        shutil.copy(path, spool / path.name)
    mine = make_spans(2)
    exporter = langsmith_receiver.exporter(spool_dir=str(spool), retry_policy=FAST, shutdown_grace=0.5)
    exporter.export(mine)
    exporter.force_flush(5_000)
    assert langsmith_receiver.wait_for_runs(2, timeout=10)
    exporter.force_flush(5_000)
    exporter.shutdown(5_000)
    assert set(langsmith_receiver.runs) == run_ids(mine)
    assert planted.isdisjoint(langsmith_receiver.runs)
    assert sorted(p.name for p in spool.iterdir()) == sorted(p.name for p in trusted.glob("*.batch"))


@pytest.mark.parametrize("kind", ["writable by others", "owned by another user"])
def test_an_untrusted_spool_holding_files_is_refused_cleanly(langsmith_receiver, tmp_path, caplog, kind):
    """The same directory, seen from the reading side (LangSmith up, files waiting there): the
    refusal is one clear ERROR line naming the directory, delivery of this process's own runs is
    not disturbed, and a flush that delivered everything says so."""
    trusted = tmp_path / "trusted"
    write_real_batch(trusted, 1)
    spool = untrusted_directory(tmp_path / "spool", kind)
    for path in trusted.glob("*.batch"):
        shutil.copy(path, spool / path.name)
    exporter = langsmith_receiver.exporter(spool_dir=str(spool), retry_policy=FAST, shutdown_grace=0.5)
    mine = make_spans(2)
    with caplog.at_level(logging.INFO, logger="otel_langsmith"):
        exporter.export(mine)
        assert langsmith_receiver.wait_for_runs(2, timeout=10)
        flushed = exporter.force_flush(5_000)
        exporter.shutdown(5_000)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(str(spool) in r.getMessage() for r in errors), [r.getMessage() for r in errors]
    assert [r.getMessage() for r in errors if r.exc_info] == [], "the refusal surfaced as an unexpected failure"
    assert flushed is True
    assert exporter.stats().runs_exported == 2


# -- 4. a password in the endpoint is never logged ---------------------------------------------------------


def _answers(case: str) -> Callable[[Seen], Answer] | None:
    """How the endpoint answers: not at all (None), with a web page, or refusing the key."""
    if case == "down":
        return None
    if case == "not LangSmith":
        return lambda seen: (200, {"Content-Type": "text/html"}, b"<html><title>Sign in</title></html>")
    return lambda seen: (401, {"Content-Type": "application/json"}, b'{"detail": "Invalid token"}')


@pytest.mark.parametrize("case", ["down", "not LangSmith", "refuses the key", "without a scheme"])
def test_a_password_in_the_endpoint_is_never_logged(monkeypatch, caplog, case):
    answer = _answers(case)
    caplog.set_level(logging.DEBUG)  # every logger: urllib3's lines too
    caplog.set_level(logging.DEBUG, logger="otel_langsmith")
    with ExitStack() as running:
        port = running.enter_context(Server(answer)).port if answer is not None else closed_port()
        endpoint = f"user:{PASSWORD}@127.0.0.1:{port}"
        monkeypatch.setenv("LANGSMITH_ENDPOINT", endpoint if case == "without a scheme" else f"http://{endpoint}")
        monkeypatch.setenv("LANGSMITH_API_KEY", API_KEY)
        exporter = LangSmithSpanExporter(retry_policy=FAST, shutdown_grace=0.2, timeout=2.0)
        assert exporter.settings.endpoint.count(PASSWORD) == 1  # read from the environment, kept to send with
        exporter.export(make_spans(2))
        exporter.force_flush(5_000)
        exporter.export(make_spans(1))
        exporter.shutdown(5_000)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    if case in ("not LangSmith", "refuses the key"):
        assert f"user:***@127.0.0.1:{port}" in logged(caplog)  # the endpoint was named, masked
    assert PASSWORD not in logged(caplog)
    assert PASSWORD not in repr(exporter.settings) and PASSWORD not in str(exporter.settings)
    assert all(PASSWORD not in shown for _, shown, _ in exporter.settings.described())
    assert API_KEY not in logged(caplog) and API_KEY not in repr(exporter.settings)


# -- 5. propagation limits ----------------------------------------------------------------------------------


def test_a_huge_trace_header_is_ignored_with_one_warning(caplog, quiet_throttle):
    header, _ = trace_header(now_us() - SEC)
    huge = ".".join([header] * (1_200_000 // (len(header) + 1)))
    assert len(huge) > 1_150_000
    propagator = LangSmithPropagator()
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="otel_langsmith"):
        contexts = [propagator.extract({"langsmith-trace": huge}) for _ in range(100)]
    elapsed = time.monotonic() - started
    assert all(propagation.remote_parent(context) is None for context in contexts)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "langsmith-trace" in warnings[0].getMessage()
    assert len(warnings[0].getMessage()) < 500  # the header is measured, not quoted
    assert elapsed < 5.0  # refused by its length, not parsed 100 times
    # The same header within the limit is taken: the limit is what refused it.
    assert propagation.remote_parent(propagator.extract({"langsmith-trace": header})) is not None


def test_a_huge_baggage_drops_the_lineage_but_keeps_the_parent(caplog, quiet_throttle):
    header, (parent_id,) = trace_header(now_us() - SEC)
    ours = baggage('{"tenant": "acme"}', tags="vip,beta", project="stolen-project")
    propagator = LangSmithPropagator()
    small = propagation.remote_parent(propagator.extract({"langsmith-trace": header, "baggage": ours}))
    assert small is not None and small.lineage is not None  # what the limit would take away
    assert small.lineage.metadata == {"tenant": "acme"} and small.session_name == "stolen-project"
    huge = ours + ",padding=" + "x" * 1_048_576
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        parent = propagation.remote_parent(propagator.extract({"langsmith-trace": header, "baggage": huge}))
    assert parent is not None and parent.run_id == parent_id and parent.trace_id == parent_id
    assert parent.lineage is None
    assert parent.session_name is None
    assert any("baggage" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


FUTURE_HEADERS = {
    "its only segment in 2099": lambda: trace_header(in_2099())[0],
    "its root in 2099, the caller now": lambda: trace_header(in_2099(), now_us() - SEC)[0],
}


@pytest.mark.parametrize("case", list(FUTURE_HEADERS))
def test_a_trace_header_from_the_future_is_ignored(langsmith_receiver, case, quiet_throttle):
    header = FUTURE_HEADERS[case]()
    context = LangSmithPropagator().extract({"langsmith-trace": header})
    assert propagation.remote_parent(context) is None
    flushed, stats = trace_under(langsmith_receiver, context)
    assert flushed is True, stats
    (root,) = langsmith_receiver.roots()
    assert root["name"] == "handler" and root.get("parent_run_id") is None
    assert root["trace_id"] == root["id"]
    this_year = datetime.now(timezone.utc).year
    assert root["start_time"].startswith(str(this_year))
    assert root["dotted_order"].startswith(str(this_year)) and "." not in root["dotted_order"]
    assert langsmith_receiver.rejected == []


# -- 6. hostile input end to end -------------------------------------------------------------------------------


def _hostile_carriers() -> dict[str, Callable[[], dict[str, str]]]:
    def valid() -> str:
        return trace_header(now_us() - SEC)[0]

    def with_project(header: str, metadata: str = "{}", **extra: str) -> dict[str, str]:
        """What the LangSmith SDK's ``to_headers()`` sends: the trace header and the caller's project."""
        return {
            "langsmith-trace": header,
            "baggage": baggage(metadata, project=extra.pop("project", "caller"), **extra),
        }

    return {
        # Headers the propagator must ignore: the runs are then roots of this process.
        "a 1.2 MB trace header": lambda: with_project(".".join([valid()] * 20_000)),
        "a trace header in 2099": lambda: with_project(trace_header(in_2099())[0]),
        "garbage": lambda: {"langsmith-trace": "\x00" * 100, "baggage": "%%%,=,==,langsmith-metadata=%ZZ"},
        # Headers with a parent worth keeping, or not: either way LangSmith must take the runs.
        "a 1 MB baggage": lambda: {
            "langsmith-trace": valid(),
            "baggage": baggage("{}", project="caller") + ",x=" + "y" * 1_048_576,
        },
        "a trace header alone, no baggage": lambda: {"langsmith-trace": valid()},
        "a root segment in 2099": lambda: with_project(trace_header(in_2099(), now_us() - SEC)[0]),
        "segments out of order": lambda: with_project(trace_header(now_us() - SEC, now_us() - 60 * SEC)[0]),
        "a leap second": lambda: with_project("20231231T235960000000Z" + str(uuid.uuid4())),
        "upper-case run ids": lambda: with_project(valid().upper()),
        "metadata nested 300 deep": lambda: with_project(valid(), '{"a":' * 300 + "1" + "}" * 300, tags="t1, ,t2,,"),
        "metadata that is not an object": lambda: with_project(valid(), "[1, 2, 3]"),
        "metadata that is not JSON": lambda: with_project(valid(), "{nope"),
        "a 7000-character project name": lambda: with_project(valid(), project="p" * 7_000),
        "control characters": lambda: with_project(
            valid(), '{"k\\u0000": "v\\u0000\\n"}', tags="a\x00b,\r\n", project="p\x00"
        ),
    }


HOSTILE = _hostile_carriers()


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_propagation_headers_never_cost_a_run(langsmith_receiver, case, quiet_throttle):
    context = LangSmithPropagator().extract(HOSTILE[case]())
    flushed, stats = trace_under(langsmith_receiver, context)
    assert langsmith_receiver.rejected == [], [r.message for r in langsmith_receiver.rejected]
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert set(runs) == {"handler", "step"}
    handler, step = runs["handler"], runs["step"]
    assert step["parent_run_id"] == handler["id"] and step["trace_id"] == handler["trace_id"]
    assert step["dotted_order"].rpartition(".")[0] == handler["dotted_order"]
    parent = propagation.remote_parent(context)
    if parent is None:
        assert handler.get("parent_run_id") is None and handler["trace_id"] == handler["id"]
    else:
        assert handler["parent_run_id"] == parent.run_id and handler["trace_id"] == parent.trace_id
    assert flushed is True, stats
    assert stats.runs_exported == 2 and stats.runs_dropped == 0 and stats.runs_refused == 0
