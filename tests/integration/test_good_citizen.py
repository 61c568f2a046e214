"""A good citizen in every process: a quick exit whatever the endpoint does, no hijacked setup, an
off switch, one setup however often it is asked for, quiet logs. Real processes where the point is
about a process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import Silent, child_environment, closed_port_url, run_child
from opentelemetry.sdk.trace import TracerProvider

import otel_langsmith
from otel_langsmith import _pytest_plugin as plugin
from otel_langsmith._spool import decode_file

BIN = Path(sys.executable).parent
INSTRUMENT = BIN / "opentelemetry-instrument"


# -- 1. exit does not hang when LangSmith is unreachable -------------------------------------------

APP = """
import sys, time
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
import otel_langsmith

if sys.argv[1] == "exporter":  # the README's setup by hand
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(otel_langsmith.LangSmithSpanExporter()))
    trace.set_tracer_provider(provider)
else:
    otel_langsmith.configure()
tracer = trace.get_tracer("app")
for index in range(50):
    with tracer.start_as_current_span(f"request-{index}"):
        with tracer.start_as_current_span("step"):
            pass
time.sleep(0.3)  # the sender has tried, and is waiting or stuck
print("last line", time.monotonic(), flush=True)
"""


def exit_delay(front: str, endpoint: str, **env: str) -> tuple[float, subprocess.CompletedProcess]:
    completed = run_child(
        [sys.executable, "-c", APP, front], env=child_environment(LANGSMITH_ENDPOINT=endpoint, **env), timeout=60
    )
    finished = time.monotonic()
    assert completed.returncode == 0, completed.stderr
    return finished - float(completed.stdout.split()[-1]), completed


@pytest.mark.parametrize("front", ["exporter", "processor"])
@pytest.mark.parametrize("endpoint", ["refuses", "never answers", "unparsable"])
def test_exit_is_quick_whatever_the_endpoint_does(front, endpoint, tmp_path):
    spool = tmp_path / "spool"
    with Silent() as silent:
        url = {"refuses": closed_port_url(), "never answers": silent, "unparsable": "not a url"}[endpoint]
        delay, completed = exit_delay(front, url, LANGSMITH_API_KEY="k")
        assert delay < 5, (delay, completed.stderr[-2000:])
        assert "lost 100 run(s)" in completed.stderr  # said once, in one line
        if endpoint == "unparsable":
            assert "is not an http(s) URL" in completed.stderr and delay < 2  # no attempt at all
        # With a spool, nothing is lost: the runs wait on disk for the next process.
        delay, completed = exit_delay(front, url, LANGSMITH_API_KEY="k", OTEL_EXPORTER_LANGSMITH_SPOOL_DIR=str(spool))
    assert delay < 5, (delay, completed.stderr[-2000:])
    assert "lost" not in completed.stderr
    spooled = [run for path in spool.glob("*.batch") for run in decode_file(path.read_bytes())]
    assert len({run.run_id for run in spooled}) == 100


# -- 2. installing the package changes nothing unless LangSmith is asked for ---------------------


def instrumented(command: str, python: Path, **env: str) -> subprocess.CompletedProcess:
    runner = "import sys; from opentelemetry.instrumentation.auto_instrumentation import run; sys.exit(run())"
    return run_child(
        [str(python), "-c", runner, str(python), "-c", command],
        env=child_environment(OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", **env),
        timeout=60,
    )


SPAN = (
    "from opentelemetry import trace\nwith trace.get_tracer('t').start_as_current_span('checked'): pass\nprint('app')"
)


@pytest.fixture(scope="module")
def without_distro(tmp_path_factory) -> Path:
    """A Python whose site-packages are this one's, but for opentelemetry-distro."""
    root = tmp_path_factory.mktemp("no-distro")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    ours = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
    theirs = next(Path(root, "lib").glob("python3*/site-packages"))
    for entry in ours.iterdir():
        if not entry.name.startswith("opentelemetry_distro"):
            (theirs / entry.name).symlink_to(entry)
    return root / "bin" / "python"


@pytest.mark.parametrize("distro", [True, False], ids=["with distro", "without distro"])
def test_another_exporter_is_configured_as_if_the_package_were_not_installed(distro, without_distro):
    python = Path(sys.executable) if distro else without_distro
    completed = instrumented(SPAN, python, OTEL_TRACES_EXPORTER="console")
    assert completed.returncode == 0, completed.stderr
    assert "Configuration of" not in completed.stderr and "already loaded" not in completed.stderr
    if distro:  # the distro's configurator ran: the console exporter printed the span
        assert '"name": "checked"' in completed.stdout
    assert completed.stdout.splitlines()[0] == "app"


@pytest.mark.parametrize("distro", [True, False], ids=["with distro", "without distro"])
@pytest.mark.parametrize("name", ["langsmith", "langsmith_live"])
def test_both_zero_code_names_work_with_or_without_the_distro(name, distro, without_distro, langsmith_receiver):
    python = Path(sys.executable) if distro else without_distro
    completed = instrumented(
        SPAN,
        python,
        OTEL_TRACES_EXPORTER=name,
        LANGSMITH_ENDPOINT=langsmith_receiver.url,
        LANGSMITH_API_KEY=langsmith_receiver.api_key,
    )
    assert completed.returncode == 0, completed.stderr
    assert [run["name"] for run in langsmith_receiver.runs.values()] == ["checked"]
    assert "Configuration of" not in completed.stderr


# -- 3. the processor says what it lost, as the exporter does ------------------------------------


def test_the_processor_and_the_exporter_say_their_losses_alike():
    lines = {}
    for front in ("exporter", "processor"):
        _, completed = exit_delay(front, closed_port_url(), LANGSMITH_API_KEY="k")
        (line,) = [line for line in completed.stderr.splitlines() if "shut down having lost" in line]
        lines[front] = line.replace("LangSmithSpanExporter", "FRONT").replace("LangSmithSpanProcessor", "FRONT")
    assert lines["exporter"] == lines["processor"]
    assert "lost 100 run(s) (shutdown: 100)" in lines["exporter"]


# -- 4. configure() twice --------------------------------------------------------------------------


def test_configure_twice_keeps_one_processor(langsmith_receiver, caplog):
    provider = TracerProvider()
    options = {"endpoint": langsmith_receiver.url, "api_key": langsmith_receiver.api_key, "propagate_headers": False}
    first = otel_langsmith.configure(tracer_provider=provider, **options)
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        second = otel_langsmith.configure(tracer_provider=provider, **options)
    assert second is first and "called before" in caplog.text
    with provider.get_tracer("cell").start_as_current_span("once"):
        pass
    provider.shutdown()
    assert langsmith_receiver.operations(next(iter(langsmith_receiver.runs))) == ["post"]
    assert len(langsmith_receiver.requests) == 2  # /info and one post, not two


# -- 5. the off switch -----------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"])
@pytest.mark.parametrize("front", ["exporter", "processor"])
def test_tracing_false_sends_nothing_and_says_so(variable, front, langsmith_receiver):
    completed = run_child(
        [sys.executable, "-c", APP, front],
        env=child_environment(
            LANGSMITH_ENDPOINT=langsmith_receiver.url,
            LANGSMITH_API_KEY=langsmith_receiver.api_key,
            **{variable: "false"},
        ),
    )
    assert completed.returncode == 0, completed.stderr
    assert langsmith_receiver.requests == []
    doctor = run_child(
        [str(BIN / "otel-langsmith"), "doctor"],
        env=child_environment(
            LANGSMITH_ENDPOINT=langsmith_receiver.url,
            LANGSMITH_API_KEY=langsmith_receiver.api_key,
            **{variable: "false"},
        ),
    )
    assert doctor.returncode == 1 and "LANGSMITH_TRACING is false: nothing is sent" in doctor.stdout


def test_tracing_unset_or_true_is_on(langsmith_receiver):
    for extra in ({}, {"LANGSMITH_TRACING": "true"}):
        langsmith_receiver.clear()
        completed = run_child(
            [sys.executable, "-c", APP, "processor"],
            env=child_environment(
                LANGSMITH_ENDPOINT=langsmith_receiver.url, LANGSMITH_API_KEY=langsmith_receiver.api_key, **extra
            ),
        )
        assert completed.returncode == 0, completed.stderr
        assert len(langsmith_receiver.runs) == 100


# -- 6. a server that is not LangSmith costs one error line, not one per run -----------------------


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # an ordinary web server: no such page
        self.send_error(404, "Not Found")


def test_a_web_server_that_is_not_langsmith_costs_one_line(tmp_path):
    os.chdir(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        completed = run_child(
            [sys.executable, "-c", APP, "exporter"],
            env=child_environment(
                LANGSMITH_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}", LANGSMITH_API_KEY="k"
            ),
        )
    finally:
        server.shutdown()
    assert completed.returncode == 0
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) <= 4, lines
    assert any("does not answer as a LangSmith API" in line for line in lines)
    assert "<html" not in completed.stderr.lower() and "not_langsmith: 100" in completed.stderr


# -- 7. quoted keys --------------------------------------------------------------------------------


def test_a_quoted_key_from_an_env_file_works(langsmith_receiver):
    completed = run_child(
        [sys.executable, "-c", APP, "exporter"],
        env=child_environment(LANGSMITH_ENDPOINT=f"'{langsmith_receiver.url}'", LANGSMITH_API_KEY='"lsv2-test-key"'),
    )
    assert completed.returncode == 0, completed.stderr
    assert len(langsmith_receiver.runs) == 100 and langsmith_receiver.rejected == []


# -- 9. small things people reach for --------------------------------------------------------------


def test_version_and_doctor_count_problems_even_when_unreachable():
    version = run_child([str(BIN / "otel-langsmith"), "--version"])
    assert version.stdout.strip() == f"otel-langsmith {otel_langsmith.__version__}"
    doctor = run_child(
        [str(BIN / "otel-langsmith"), "doctor"], env=child_environment(LANGSMITH_ENDPOINT=closed_port_url())
    )
    assert doctor.returncode == 1 and doctor.stdout.rstrip().endswith("2 problem(s) found.")


def test_the_fixture_says_what_it_is():
    doc = getattr(plugin.langsmith_receiver, "__wrapped__", plugin.langsmith_receiver).__doc__
    assert doc and "LangSmithReceiver" in doc and "def test_my_agent" in doc


def test_receive_previews_each_trace_as_it_completes():
    process = subprocess.Popen(
        [str(BIN / "otel-langsmith"), "receive", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(),
    )
    try:
        first = process.stdout.readline()
        url = first.split(" at ")[1].strip()
        assert url.startswith("http://127.0.0.1:")
        completed = run_child([sys.executable, "-c", APP, "processor"], env=child_environment(LANGSMITH_ENDPOINT=url))
        assert completed.returncode == 0, completed.stderr
        trees = []
        deadline = time.monotonic() + 10
        while len(trees) < 50 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("request-"):
                trees.append(line.split(" [")[0])
        assert sorted(trees) == sorted(f"request-{index}" for index in range(50))
    finally:
        process.terminate()
        process.wait(5)
