"""The spool and the settings under attack, as a crash, a disk, another program or a hostile
environment would attack them.

The spool (``spool_dir``): files killed mid-write, truncated, of garbage, empty, huge, with a header
that lies about its sizes; entries that are directories, FIFOs or symlinks (to a file outside, to a
FIFO, to themselves); odd names and claims whose pid is no pid; a claim left by a killed process;
a read-only directory, one that disappears or becomes a file while
sending, a full disk (``RLIMIT_FSIZE``: no root, no tmpfs); two processes draining one directory.
The promises: the exporter never raises into the application nor hangs past its timeouts; a bad
file costs only itself and never blocks the good ones behind it; every good run is delivered
exactly once; nothing outside the spool directory is read, written or deleted; the API key never
shows in a file name or a log line.

The settings (``Settings.resolve``, ``configure()``): negative, huge, NaN, garbage, unicode and
empty values, endpoints that are not http or cannot be parsed, credentials in the URL, garbage
proxies, ``LANGSMITH_TRACING`` spellings. The promises: a log line naming the setting (never the
key), never a crash at span time, never a hang.

Everything runs against the real SDK, the real exporter and the package's receiver on loopback;
processes are real where the point is a process.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from helpers import child_environment, closed_port_url, ended_spans, run_child
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import otel_langsmith
from otel_langsmith import LangSmithSpanExporter, LangSmithSpanProcessor, RetryPolicy
from otel_langsmith import _ids as ids
from otel_langsmith._spool import _HOST, Spool, decode_file, encode_file
from otel_langsmith._wire import encode_run
from otel_langsmith.testing import Fault, LangSmithReceiver

API_KEY = "lsv2_pt_hostilespoolkey_0123456789abcdef"
FAST = RetryPolicy(initial_backoff=0.05, max_backoff=0.2, jitter=0.0)
HERE = Path(__file__).parent
WORKER = HERE / "spool_worker.py"
# Names that sort before any file the spool writes (those start with the time in nanoseconds).
FIRST = "00000000000000000000"


# -- fixtures and helpers -------------------------------------------------------------------------------


@pytest.fixture
def langsmith():
    with LangSmithReceiver(api_key=API_KEY) as receiver:
        yield receiver


# Every exporter and processor a test makes: shut down after it, even when it failed half-way.
_MADE: list = []


def made(front):
    _MADE.append(front)
    return front


@pytest.fixture(autouse=True)
def key_never_shows(caplog, tmp_path):
    """After every test: its fronts are shut down; the key is in no log record and in no file
    name the test left."""
    caplog.set_level(logging.DEBUG, logger="otel_langsmith")
    yield
    while _MADE:
        _MADE.pop().shutdown(1_000)
    leaked = [r.getMessage() for r in caplog.records if API_KEY in r.getMessage()]
    assert leaked == []
    assert [p for p in tmp_path.rglob("*") if API_KEY in p.name] == []


def thread_deaths(monkeypatch) -> list[str]:
    """Exceptions that end a thread from now on (the application's ``threading.excepthook`` sees them)."""
    deaths: list[str] = []

    def hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        deaths.append(f"{name}: {args.exc_type.__name__}: {args.exc_value}")

    monkeypatch.setattr(threading, "excepthook", hook)
    return deaths


def tracebacks(caplog) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]


def run_dict(name: str) -> dict:
    """A run LangSmith (and the receiver) accepts."""
    run_id = str(uuid.uuid4())
    us = time.time_ns() // 1000
    return {
        "id": run_id,
        "trace_id": run_id,
        "dotted_order": ids.segment(us, run_id),
        "name": name,
        "run_type": "chain",
        "start_time": ids.iso_time(us),
        "end_time": ids.iso_time(us + 1000),
        "session_name": "hostile-spool",
        "inputs": {"question": name},
        "outputs": {"answer": name},
    }


def spool_good(directory: Path, count: int, tag: str) -> set[str]:
    """``count`` good runs in one file written by the real spool; their names."""
    Spool(directory, max_bytes=1 << 40).write([encode_run(run_dict(f"{tag}-{i}")) for i in range(count)])
    return {f"{tag}-{i}" for i in range(count)}


def plant(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


def names(receiver: LangSmithReceiver) -> set[str]:
    return {run["name"] for run in receiver.runs.values()}


def exporter_on(receiver: LangSmithReceiver, spool: Path, **options) -> LangSmithSpanExporter:
    options = {"retry_policy": FAST, "shutdown_grace": 0.5, "timeout": 5, **options}
    return made(receiver.exporter(spool_dir=str(spool), **options))


def make_spans(count: int, prefix: str = "span") -> list:
    """``count`` ended root spans (one trace each: none waits for a parent)."""

    def body(tracer) -> None:
        for index in range(count):
            with tracer.start_as_current_span(f"{prefix}-{index}"):
                pass

    return ended_spans(body)


HUNG = object()


def within(seconds: float, work: Callable[[], object]) -> object:
    """``work()``'s result, or ``HUNG`` if it has not returned after ``seconds`` (left running)."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    return result[0] if result else HUNG


def release_fifos(root: Path) -> None:
    """Unblock every thread stuck opening a FIFO under ``root`` (a writer comes and goes, so they
    read an empty file), then remove the FIFOs."""
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        for fifo in [p for p in root.rglob("*") if stat.S_ISFIFO(p.lstat().st_mode)]:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as exc:
                if exc.errno not in (errno.ENXIO, errno.ENOENT):  # nobody reading; moved meanwhile
                    raise
        time.sleep(0.05)
    for fifo in [p for p in root.rglob("*") if stat.S_ISFIFO(p.lstat().st_mode)]:
        fifo.unlink(missing_ok=True)


def pending_files(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir() if p.name.endswith((".batch", ".taken")))


# -- 1. files a crash, a disk or another program leaves --------------------------------------------------


def junk_files(good_file: bytes) -> dict[str, bytes]:
    sha = hashlib.sha256
    header, _, payloads = good_file.partition(b"\n")
    flipped = bytearray(good_file)
    flipped[-3] ^= 0x01
    uneven = b'{"v":1,"runs":[["post","r","t",[["",3]]]],"sha256":"' + sha(b"abcdef").hexdigest().encode() + b'"}'
    return {
        "empty": b"",
        "binary": bytes(range(256)) * 8,
        "truncated": good_file[: len(good_file) // 2],
        "header_cut": header[:20],
        "checksum_mismatch": bytes(flipped),
        "lengths_do_not_add_up": uneven + b"\nabcdef",
        "version_2": header.replace(b'"v":1', b'"v":2') + b"\n" + payloads,
        "header_a_list": b"[1, 2, 3]\n",
        "runs_not_a_list": b'{"v":1,"runs":5,"sha256":"' + sha(b"").hexdigest().encode() + b'"}\n',
        "deeply_nested": b"[" * 100_000 + b"\n",
        "not_utf8": b"\xff\xfe\xfd\n\x00\x00",
    }


def test_junk_files_are_set_aside_once_and_every_good_run_is_delivered_once(langsmith, tmp_path, caplog):
    spool = tmp_path / "spool"
    expected = spool_good(spool, 2, "good-a") | spool_good(spool, 3, "good-b")
    good_bytes = min(spool.glob("*.batch")).read_bytes()
    for kind, data in junk_files(good_bytes).items():
        plant(spool, f"{FIRST}-1-{kind}.batch", data)
    (spool / f"{FIRST}-1-directory.batch").mkdir()
    (spool / f"{FIRST}-1-directory.batch" / "inside").write_bytes(b"x")
    # Good runs under odd names: unicode, bytes that are not UTF-8, a newline.
    for index, name in enumerate(["ünïcødé-名前", os.fsdecode(b"\xff\xfe-bytes"), "line\nbreak"]):
        batch = [encode_run(run_dict(f"odd-{index}"))]
        plant(spool, f"{FIRST}-2-{name}.batch", encode_file(batch))
        expected.add(f"odd-{index}")

    exporter = exporter_on(langsmith, spool)
    started = time.monotonic()
    flushed = exporter.force_flush(10_000)
    assert time.monotonic() - started < 5
    assert names(langsmith) == expected and langsmith.duplicate_posts == 0
    assert pending_files(spool) == []
    assert flushed is True
    errors = len([r for r in caplog.records if r.levelno >= logging.ERROR])
    assert 1 <= errors <= len(junk_files(good_bytes)) + 1  # one line per bad file, not per attempt
    # Nothing is tried again: a second flush neither sends nor logs anything.
    requests = len(langsmith.requests)
    assert exporter.force_flush(5_000) is True
    assert len(langsmith.requests) == requests
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == errors
    exporter.shutdown(5_000)
    assert tracebacks(caplog) == []


def test_a_header_that_lies_about_sizes_never_blocks_the_files_behind_it(tmp_path, caplog):
    """The checksum covers the payloads, not the header: a header whose lengths still add up but cut
    the payloads elsewhere decodes. Its run, too large for the server's limit, is shrunk, which
    parses its (misaligned) JSON."""
    spool = tmp_path / "spool"
    big = encode_run({**run_dict("lying"), "inputs": {"pad": "x" * 20_000}})
    payloads = b"".join(payload for _, payload in big.parts)
    (main, inputs) = (len(payload) for _, payload in big.parts[:2])
    parts = [["", main + 7], ["inputs", inputs - 7], *[[n, len(p)] for n, p in big.parts[2:]]]
    header = {
        "v": 1,
        "runs": [["post", big.run_id, big.trace_id, parts]],
        "sha256": hashlib.sha256(payloads).hexdigest(),
    }
    plant(spool, f"{FIRST}-1-lying.batch", orjson.dumps(header) + b"\n" + payloads)
    expected = spool_good(spool, 3, "behind")
    with LangSmithReceiver(api_key=API_KEY, size_limit_bytes=8_000) as receiver:
        exporter = exporter_on(receiver, spool)
        exporter.force_flush(5_000)
        exporter.force_flush(5_000)
        assert names(receiver) == expected, "the good runs behind the lying file were never sent"
        assert pending_files(spool) == [], "the lying file is kept and taken again, first, forever"
        exporter.shutdown(3_000)


@pytest.mark.parametrize(
    "pid",
    ["9" * 200, str(2**64), "\uff10\uff11\uff12", "", "0", "-7"],
    ids=["200_digits", "above_2_64", "unicode_digits", "empty", "zero", "negative"],
)
def test_a_claim_whose_pid_is_no_pid_never_blocks_the_spool(langsmith, tmp_path, caplog, pid):
    spool = tmp_path / "spool"
    expected = spool_good(spool, 3, "good")
    plant(spool, f"{FIRST}-1-deadbeef.batch.{_HOST}-{pid}.taken", b"junk")
    exporter = exporter_on(langsmith, spool)
    exporter.force_flush(5_000)
    assert names(langsmith) == expected, "no spool file could be taken"
    assert tracebacks(caplog) == []
    exporter.shutdown(3_000)


def test_a_claim_left_by_a_killed_process_is_sent_once_by_the_next(langsmith, tmp_path):
    spool = tmp_path / "spool"
    expected = spool_good(spool, 4, "claimed")
    langsmith.plan(Fault(503, delay=4))  # the first process is killed while its request is in flight
    first = subprocess.Popen(
        [sys.executable, str(WORKER), "replay", str(spool), langsmith.url, API_KEY],
        env=child_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        # Killed once its request is in flight (the fault taken): the next process meets no fault.
        while (not list(spool.glob("*.taken")) or langsmith.faults) and time.monotonic() < deadline:
            time.sleep(0.01)
        (claim,) = spool.glob("*.taken")
        assert claim.name.endswith(f"{_HOST}-{first.pid}.taken")
    finally:
        first.kill()
        first.wait()
    completed = run_child([sys.executable, str(WORKER), "replay", str(spool), langsmith.url, API_KEY], timeout=60)
    assert completed.returncode == 0, completed.stderr
    flushed = json.loads(completed.stdout.splitlines()[-1])["flushed"]
    assert names(langsmith) == expected, (
        f"the next process's force_flush() returned {flushed} without sending the runs the killed one held: "
        f"{pending_files(spool)}"
    )
    assert flushed is True and langsmith.duplicate_posts == 0
    assert pending_files(spool) == []


def test_a_huge_file_of_garbage_is_set_aside_and_the_rest_delivered(langsmith, tmp_path, caplog):
    spool = tmp_path / "spool"
    expected = spool_good(spool, 2, "small")
    with open(spool / f"{FIRST}-1-huge.batch", "wb") as handle:  # 256 MiB of zeros, sparse on disk
        handle.truncate(256 << 20)
    exporter = exporter_on(langsmith, spool)
    started = time.monotonic()
    assert exporter.force_flush(20_000) is True
    assert time.monotonic() - started < 10
    assert names(langsmith) == expected
    assert pending_files(spool) == []
    exporter.shutdown(3_000)


# -- 2. entries that are not files ---------------------------------------------------------------------


def sender_activity(seconds: float) -> tuple[float, int]:
    """(CPU seconds this process used, otel_langsmith records logged) over ``seconds`` of idling."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log = logging.getLogger("otel_langsmith")
    log.addHandler(handler)
    try:
        cpu = time.process_time()
        time.sleep(seconds)
        return time.process_time() - cpu, len(records)
    finally:
        log.removeHandler(handler)


@pytest.mark.parametrize("kind", ["dangling", "to_itself"])
def test_a_symlink_that_leads_nowhere_never_spins_the_sender(langsmith, tmp_path, kind):
    """Taking a file renames it, then touches it through the link: that fails as if another
    process had been faster, leaving a claim in this process's name that it then "recovers from a
    process that is gone", and takes again, at once, for ever."""
    spool = tmp_path / "spool"
    expected = spool_good(spool, 1, "good")
    link = spool / f"{FIRST}-1-link.batch"
    os.symlink(spool / "nowhere" if kind == "dangling" else link.name, link)
    exporter = exporter_on(langsmith, spool)
    exporter.export(make_spans(1, "live"))  # the sender starts
    assert langsmith.wait_for_runs(2, timeout=5)
    cpu, records = sender_activity(1.0)
    assert names(langsmith) == expected | {"live-0"}
    assert records < 20 and cpu < 0.5, f"idle for 1 s: {cpu:.2f} s of CPU, {records} log records"


UNTOUCHABLE_APP = """
import sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otel_langsmith import LangSmithSpanExporter, RetryPolicy

exporter = LangSmithSpanExporter(
    endpoint=sys.argv[1], api_key=sys.argv[2], spool_dir=sys.argv[3],
    retry_policy=RetryPolicy(initial_backoff=0.05, max_backoff=0.2, jitter=0.0),
)
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
with provider.get_tracer("app").start_as_current_span("live"):
    pass
time.sleep(0.5)
cpu = time.process_time()
time.sleep(1.5)
print(round(time.process_time() - cpu, 2), flush=True)
provider.shutdown()
"""


def test_a_symlink_to_a_file_of_another_user_never_spins_the_sender(langsmith, tmp_path):
    """``x.batch -> /etc/passwd`` in the spool of an ordinary user: touching the claim through the
    link is refused, the claim stays this process's for ever, and counts as waiting."""
    spool = tmp_path / "spool"
    expected = spool_good(spool, 1, "good")
    if os.geteuid() == 0:  # a file this process (root without CAP_FOWNER, CAP_DAC_*) cannot touch
        target = tmp_path / "passwd"
        target.write_text("root:x:0:0:root:/root:/bin/bash\n")
        os.chown(target, 65534, 65534)
    else:
        target = Path("/etc/passwd")
    os.symlink(target, spool / f"{FIRST}-1-passwd.batch")
    completed = subprocess.run(
        [sys.executable, "-c", UNTOUCHABLE_APP, langsmith.url, API_KEY, str(spool)],
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=_drop_file_capabilities if os.geteuid() == 0 else None,
    )
    assert completed.returncode == 0, completed.stderr
    assert names(langsmith) == expected | {"live"}
    cpu = float(completed.stdout.split()[-1])
    assert cpu < 0.5, f"the idle sender used {cpu} s of CPU in 1.5 s"


@pytest.mark.parametrize("kind", ["fifo", "symlink_to_a_fifo"])
def test_a_fifo_in_the_spool_never_hangs_a_flush(langsmith, tmp_path, kind):
    spool = tmp_path / "spool"
    expected = spool_good(spool, 2, "good")
    entry = spool / f"{FIRST}-1-fifo.batch"
    if kind == "fifo":
        os.mkfifo(entry)
    else:
        os.mkfifo(tmp_path / "elsewhere.fifo")
        os.symlink(tmp_path / "elsewhere.fifo", entry)
    exporter = exporter_on(langsmith, spool)
    try:
        result = within(3.5, lambda: exporter.force_flush(2_000))
        assert result is not HUNG, "force_flush(timeout_millis=2000) was still blocked after 3.5 s"
        assert names(langsmith) == expected
    finally:
        release_fifos(tmp_path)
        exporter.shutdown(2_000)


def test_a_fifo_in_a_full_spool_never_hangs_export(langsmith, tmp_path):
    spool = tmp_path / "spool"
    spool_good(spool, 5, "old")
    os.mkfifo(spool / f"{FIRST}-1-fifo.batch")
    langsmith.stop()
    # Over its bound already: the next write evicts the oldest entry first, and counts its runs.
    exporter = exporter_on(langsmith, spool, spool_max_bytes=1_000)
    spans = make_spans(5)

    def application() -> None:
        for span in spans:
            exporter.export([span])
            time.sleep(0.05)

    try:
        assert within(3, application) is not HUNG, "export() blocked the application's thread"
    finally:
        release_fifos(tmp_path)
        exporter.shutdown(2_000)


@pytest.mark.parametrize("kind", ["symlink_loop", "directory"])
def test_one_bad_entry_never_stops_the_spool_from_keeping_runs(langsmith, tmp_path, caplog, kind):
    """While LangSmith is down, runs go to the spool: a symlink to itself (which cannot be stat'ed)
    or a directory ending in ``.batch`` (which cannot be unlinked to make room) must not turn every
    write away, and with it every run of the outage."""
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    entry = spool / f"{FIRST}-1-bad.batch"
    if kind == "symlink_loop":
        os.symlink(entry.name, entry)
        bound = 1 << 30
    else:
        entry.mkdir()
        bound = 4_000  # the directory counts 4096 bytes: the spool must make room
    langsmith.stop()
    exporter = exporter_on(langsmith, spool, spool_max_bytes=bound)
    for span in make_spans(10):
        exporter.export([span])
        time.sleep(0.03)
    exporter.shutdown(3_000)
    stats = exporter.stats()
    refused = [r.getMessage() for r in caplog.records if "Could not write to the spool" in r.getMessage()]
    assert refused == [] and stats.dropped.get("shutdown", 0) == 0, (refused, stats.dropped)
    assert stats.runs_spooled == 10


@pytest.mark.parametrize("kind", ["batch_outside", "file_outside", "corrupt_is_a_link_outside"])
def test_a_symlink_never_reaches_outside_the_spool(langsmith, tmp_path, kind):
    spool = tmp_path / "spool"
    outside = tmp_path / "outside"
    outside.mkdir()
    expected = spool_good(spool, 2, "good")
    if kind == "batch_outside":  # another spool, another key's runs, a file of another program
        spool_good(outside, 1, "outside")
        (target,) = outside.glob("*.batch")
        os.symlink(target, spool / f"{FIRST}-1-link.batch")
    elif kind == "file_outside":  # the stand-in of /etc/passwd
        target = outside / "passwd"
        target.write_text("root:x:0:0:root:/root:/bin/bash\n")
        os.symlink(target, spool / f"{FIRST}-1-link.batch")
    else:
        target = plant(spool, f"{FIRST}-1-garbage.batch", b"garbage")
        os.symlink(outside, spool / "corrupt")
    long_ago = 1_000_000_000
    for path in outside.iterdir():
        os.utime(path, (long_ago, long_ago))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime) for p in outside.iterdir()}
    exporter = exporter_on(langsmith, spool)
    exporter.force_flush(5_000)
    exporter.shutdown(3_000)
    assert "outside-0" not in names(langsmith), "a file outside the spool was read and sent with this key"
    after = {p.name: (p.read_bytes(), p.stat().st_mtime) for p in outside.iterdir()}
    assert after == before, "a file outside the spool was written, touched or moved there"
    assert expected <= names(langsmith)


# -- 3. the directory itself ------------------------------------------------------------------------------


def _drop_file_capabilities() -> None:
    """In the child, before exec: root without the capabilities that ignore file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


LIVE_APP = """
import json, sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otel_langsmith import LangSmithSpanExporter, RetryPolicy

exporter = LangSmithSpanExporter(
    endpoint=sys.argv[1], api_key=sys.argv[2], spool_dir=sys.argv[3],
    retry_policy=RetryPolicy(initial_backoff=1.0, max_backoff=4.0, jitter=0.0),
)
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("live")
exported = {}
for index in range(8):
    with tracer.start_as_current_span(f"live-{index}"):
        pass
    exported[f"live-{index}"] = time.monotonic()
    time.sleep(0.4)
print(json.dumps({"exported": exported, "cpu": time.process_time()}), flush=True)
provider.shutdown()
"""


def test_a_read_only_spool_never_holds_back_live_runs(langsmith, tmp_path):
    """Files another process left in a directory this one cannot write: they cannot be claimed.
    That is no outage of LangSmith: the application's live runs must go at once, not after the
    backoff."""
    spool = tmp_path / "spool"
    spool_good(spool, 2, "left")
    os.chmod(spool, 0o500)
    try:
        completed = subprocess.run(
            [sys.executable, "-c", LIVE_APP, langsmith.url, API_KEY, str(spool)],
            env=child_environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=_drop_file_capabilities if os.geteuid() == 0 else None,
        )
    finally:
        os.chmod(spool, 0o700)
    assert completed.returncode == 0, completed.stderr
    reported = json.loads(completed.stdout.splitlines()[-1])
    exported = reported["exported"]
    arrived = {}
    runs = langsmith.runs
    for request in langsmith.requests:
        for run_id in request.run_ids:
            if request.status == 202 and run_id in runs:
                arrived.setdefault(runs[run_id]["name"], request.at)
    delays = {name: round(arrived[name] - at, 2) for name, at in exported.items() if name in arrived}
    assert set(delays) == set(exported), delays
    assert max(delays.values()) < 1.5, f"live runs waited out a backoff: {delays}"
    # Files it cannot take are no reason to turn without a pause: 3 s of the app, not of spinning.
    assert reported["cpu"] < 1.5, f"{reported['cpu']:.2f} s of CPU in 3.2 s"
    assert "Traceback" not in completed.stderr, completed.stderr[-2000:]


@pytest.mark.parametrize("fate", ["removed", "replaced_by_a_file"])
def test_a_spool_directory_that_goes_away_while_sending(langsmith, tmp_path, monkeypatch, caplog, fate):
    deaths = thread_deaths(monkeypatch)
    spool = tmp_path / "spool"
    langsmith.stop()
    exporter = exporter_on(langsmith, spool)
    for span in make_spans(5, "before"):
        exporter.export([span])
        time.sleep(0.03)
    deadline = time.monotonic() + 5
    while exporter.stats().runs_spooled < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    shutil.rmtree(spool)
    if fate == "replaced_by_a_file":
        spool.write_bytes(b"not a directory any more")
    langsmith.start()
    for span in make_spans(5, "after"):
        exporter.export([span])
        time.sleep(0.05)
    assert langsmith.wait_for_runs(5, timeout=5)
    exporter.force_flush(3_000)
    started = time.monotonic()
    exporter.shutdown(5_000)
    assert time.monotonic() - started < 2
    assert {f"after-{i}" for i in range(5)} <= names(langsmith)
    assert langsmith.duplicate_posts == 0
    assert deaths == [], deaths
    assert tracebacks(caplog) == []
    if fate == "replaced_by_a_file":
        assert spool.read_bytes() == b"not a directory any more"


FULL_DISK_APP = """
import json, resource, signal, sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otel_langsmith import LangSmithSpanExporter, RetryPolicy

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
exporter = LangSmithSpanExporter(
    endpoint=sys.argv[1], api_key=sys.argv[2], spool_dir=sys.argv[3], shutdown_grace=0.5,
    retry_policy=RetryPolicy(initial_backoff=0.05, max_backoff=0.2, jitter=0.0),
)
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("full")
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
for index in range(30):
    with tracer.start_as_current_span(f"full-{index}", attributes={"input.value": "y" * (index * 300)}):
        pass
    time.sleep(0.02)
print("exported", flush=True)
sys.stdin.readline()  # LangSmith is back
flushed = exporter.force_flush(10_000)
provider.shutdown()
print(json.dumps({"flushed": flushed, "dropped": exporter.stats().dropped}), flush=True)
"""


def test_a_full_disk_loses_nothing_and_sends_each_run_once(langsmith, tmp_path):
    spool = tmp_path / "spool"
    langsmith.stop()
    child = subprocess.Popen(
        [sys.executable, "-c", FULL_DISK_APP, langsmith.url, API_KEY, str(spool)],
        env=child_environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "exported"
    assert any(p.stat().st_size > 0 for p in spool.glob("*.batch"))  # small batches fit, large ones do not
    langsmith.start()
    out, err = child.communicate("go\n", timeout=60)
    assert child.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == {"flushed": True, "dropped": {}}
    assert names(langsmith) == {f"full-{i}" for i in range(30)} and langsmith.duplicate_posts == 0
    assert list(spool.iterdir()) == []
    assert API_KEY not in err


# -- 4. processes ---------------------------------------------------------------------------------------


KILLED_WRITER = """
import os, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otel_langsmith import LangSmithSpanExporter, RetryPolicy

exporter = LangSmithSpanExporter(
    endpoint=sys.argv[1], api_key=sys.argv[2], spool_dir=sys.argv[3],
    retry_policy=RetryPolicy(initial_backoff=60, max_backoff=60),
)
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("writer")
pad = "w" * 200_000
print("ready", flush=True)
index = 0
while True:  # each export while LangSmith is down is a spool write of 200 KB: a kill lands in one
    with tracer.start_as_current_span(f"w{os.getpid()}-{index}", attributes={"input.value": pad}):
        pass
    index += 1
"""


def test_writers_killed_mid_write_leave_only_whole_files_each_sent_once(langsmith, tmp_path, caplog):
    spool = tmp_path / "spool"
    down = closed_port_url()
    for _ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, down, API_KEY, str(spool)],
            env=child_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(random.uniform(0.3, 0.7))
        child.send_signal(signal.SIGKILL)
        child.wait()
    expected = set()
    for path in spool.glob("*.batch"):
        expected |= {run.run_id for run in decode_file(path.read_bytes())}
    assert expected
    completed = run_child([sys.executable, str(WORKER), "replay", str(spool), langsmith.url, API_KEY], timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert set(langsmith.runs) == expected and langsmith.duplicate_posts == 0
    assert pending_files(spool) == [] and not (spool / "corrupt").exists()


def test_a_half_written_file_a_killed_writer_left_goes_once_it_is_old(langsmith, tmp_path):
    # A writer killed between its write and its rename leaves ".<name>.batch.tmp": never sent, and
    # not counted by spool_max_bytes. Once older than any write could take, it is removed; one
    # being written now is left to its writer.
    spool = tmp_path / "spool"
    expected = spool_good(spool, 2, "whole")
    abandoned = plant(spool, ".00000000000000000001-1-dead.batch.tmp", b"half a fil")
    old = time.time() - 3600
    os.utime(abandoned, (old, old))
    writing = plant(spool, ".00000000000000000002-2-busy.batch.tmp", b"being writ")
    exporter = exporter_on(langsmith, spool)
    assert exporter.force_flush(5_000)
    exporter.shutdown(2_000)
    assert names(langsmith) == expected
    assert not abandoned.exists() and writing.exists()


def test_two_processes_drain_one_spool_full_of_junk(langsmith, tmp_path):
    spool = tmp_path / "spool"
    expected: set[str] = set()
    for index in range(30):
        expected |= spool_good(spool, 1, f"good{index}")
        plant(spool, f"{time.time_ns():020d}-1-junk{index}.batch", b"junk %d" % index)
    children = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "replay", str(spool), langsmith.url, API_KEY],
            env=child_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert all("Traceback" not in err and API_KEY not in err for _, err in outputs)
    assert names(langsmith) == expected and langsmith.duplicate_posts == 0
    assert pending_files(spool) == []
    assert len(list((spool / "corrupt").iterdir())) == 30


# -- 5. settings ------------------------------------------------------------------------------------------


def _front(kind: str, **options):
    if kind == "exporter":
        return made(LangSmithSpanExporter(**options))
    if kind == "processor":
        return made(LangSmithSpanProcessor(**options))
    return made(otel_langsmith.configure(tracer_provider=TracerProvider(), propagate_headers=False, **options))


@pytest.mark.parametrize("front", ["exporter", "processor", "configure"])
@pytest.mark.parametrize("endpoint", ["http://[::1", "https://user:hunter2@[fe80::1/api/v1"])
def test_an_endpoint_that_cannot_be_parsed_is_named_not_raised(monkeypatch, caplog, front, endpoint):
    monkeypatch.setenv("LANGSMITH_ENDPOINT", endpoint)
    monkeypatch.setenv("LANGSMITH_API_KEY", API_KEY)
    made = _front(front)  # an application that only configures tracing must still start
    named = [r.getMessage() for r in caplog.records if "LANGSMITH_ENDPOINT" in r.getMessage()]
    assert named, "no log line names LANGSMITH_ENDPOINT"
    assert all("hunter2" not in r.getMessage() for r in caplog.records)
    made.shutdown()


def _spans_through(front, count: int = 2) -> None:
    provider = TracerProvider()
    provider.add_span_processor(front if isinstance(front, LangSmithSpanProcessor) else SimpleSpanProcessor(front))
    tracer = provider.get_tracer("settings")
    for index in range(count):
        with tracer.start_as_current_span(f"run-{index}"):
            pass


@pytest.mark.parametrize(
    ("variable", "front"),
    [
        ("OTEL_EXPORTER_LANGSMITH_TIMEOUT", "exporter"),
        ("OTEL_EXPORTER_LANGSMITH_PARENT_WAIT", "exporter"),
        ("OTEL_EXPORTER_LANGSMITH_FLUSH_INTERVAL", "processor"),
    ],
)
def test_a_duration_longer_than_a_thread_can_wait_is_no_crash(langsmith, monkeypatch, caplog, variable, front):
    """1e10 s (three centuries: "never") parses as a positive number; a thread cannot wait that long
    (``threading.TIMEOUT_MAX`` is 2**63 ns), nor a socket time out after it."""
    monkeypatch.setenv(variable, "1e10")
    deaths = thread_deaths(monkeypatch)
    made = _front(front, endpoint=langsmith.url, api_key=API_KEY, retry_policy=FAST)
    provider = TracerProvider()
    provider.add_span_processor(made if front == "processor" else SimpleSpanProcessor(made))
    tracer = provider.get_tracer("settings")
    with tracer.start_as_current_span("parent") as parent:
        with trace.use_span(parent), tracer.start_as_current_span("child"):
            pass
        time.sleep(0.3)  # the child waits for its parent: the longest wait there is
    if variable.endswith("TIMEOUT"):
        assert langsmith.wait_for_runs(2, timeout=3), "the sender never delivered: every request failed"
    else:
        time.sleep(0.5)
    assert made.force_flush(5_000) is True
    provider.shutdown()
    assert names(langsmith) == {"parent", "child"}
    assert deaths == [], deaths
    assert tracebacks(caplog) == []


def test_a_retry_policy_longer_than_a_thread_can_wait_is_no_crash(langsmith, monkeypatch, caplog):
    deaths = thread_deaths(monkeypatch)
    langsmith.plan(Fault(503))
    exporter = made(langsmith.exporter(retry_policy=RetryPolicy(initial_backoff=1e10, max_backoff=1e10, jitter=0.0)))
    _spans_through(exporter)
    time.sleep(0.5)
    assert exporter.force_flush(5_000) is True
    exporter.shutdown(3_000)
    assert names(langsmith) == {"run-0", "run-1"}
    assert deaths == [], deaths


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("OTEL_EXPORTER_LANGSMITH_TIMEOUT", "-1"),
        ("OTEL_EXPORTER_LANGSMITH_TIMEOUT", "nan"),
        ("OTEL_EXPORTER_LANGSMITH_TIMEOUT", "inf"),
        ("OTEL_EXPORTER_LANGSMITH_TIMEOUT", "ten seconds"),
        ("OTEL_EXPORTER_LANGSMITH_SHUTDOWN_GRACE", "-0.5"),
        ("OTEL_EXPORTER_LANGSMITH_MAX_QUEUE_BYTES", "1e9"),
        ("OTEL_EXPORTER_LANGSMITH_MAX_QUEUE_BYTES", "9" * 5_000),
        ("OTEL_EXPORTER_LANGSMITH_SPOOL_MAX_BYTES", "-1"),
        ("OTEL_EXPORTER_LANGSMITH_PARENT_WAIT", "NaN"),
        ("OTEL_EXPORTER_LANGSMITH_COMPRESSION", "brotli"),
        ("OTEL_EXPORTER_LANGSMITH_SPAN_FILTER", "\uff4c\uff4c\uff4d"),
        ("LANGSMITH_TRACING", "maybe"),
        ("LANGSMITH_TRACING", "\uff46\uff41\uff4c\uff53\uff45"),
        ("LANGSMITH_HIDE_INPUTS", "2"),
    ],
)
def test_a_value_that_cannot_be_parsed_is_named_and_replaced(langsmith, monkeypatch, caplog, variable, raw):
    monkeypatch.setenv(variable, raw)
    monkeypatch.setenv("LANGSMITH_ENDPOINT", langsmith.url)
    monkeypatch.setenv("LANGSMITH_API_KEY", API_KEY)
    exporter = made(LangSmithSpanExporter(retry_policy=FAST))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(variable in line and "using the default" in line for line in warnings), warnings
    _spans_through(exporter)
    assert exporter.force_flush(5_000) is True
    exporter.shutdown(3_000)
    assert names(langsmith) == {"run-0", "run-1"}


@pytest.mark.parametrize("raw", ["false", "FALSE", " 'false' ", "0", "off", "no"])
def test_tracing_turned_off_sends_nothing(langsmith, monkeypatch, caplog, raw):
    monkeypatch.setenv("LANGSMITH_TRACING", raw)
    exporter = made(langsmith.exporter())
    _spans_through(exporter)
    exporter.force_flush(2_000)
    exporter.shutdown(2_000)
    assert langsmith.requests == []
    assert any("LANGSMITH_TRACING=false" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "endpoint",
    [
        "ftp://api.smith.langchain.com",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "api.smith.langchain.com",
        "http://127.0.0.1:99999",
        "https://user:hunter2@:443/api/v1",
        "http://user:hunter2@127.0.0.1:notaport",
    ],
)
def test_an_endpoint_that_is_not_http_is_named_and_nothing_hangs(monkeypatch, caplog, tmp_path, endpoint):
    monkeypatch.setenv("LANGSMITH_ENDPOINT", endpoint)
    exporter = made(LangSmithSpanExporter(api_key=API_KEY, spool_dir=str(tmp_path / "spool"), retry_policy=FAST))
    assert any("LANGSMITH_ENDPOINT" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    _spans_through(exporter)
    started = time.monotonic()
    exporter.force_flush(2_000)
    exporter.shutdown(3_000)
    assert time.monotonic() - started < 3
    assert all("hunter2" not in r.getMessage() for r in caplog.records)
    assert tracebacks(caplog) == []


NEWLINE_KEY = "lsv2_pt_pastedtwolines_0123456789\nsecondlinesecret"


def test_a_key_with_a_line_break_is_named_at_start(monkeypatch, caplog, langsmith):
    """A key pasted with its line break: no HTTP header can carry it, whatever the endpoint does,
    as with a key of characters outside latin-1."""
    monkeypatch.setenv("LANGSMITH_API_KEY", NEWLINE_KEY)
    exporter = made(LangSmithSpanExporter(endpoint=langsmith.url, retry_policy=FAST))
    _spans_through(exporter)
    exporter.force_flush(2_000)
    exporter.shutdown(2_000)
    messages = [r.getMessage() for r in caplog.records]
    assert all("secondlinesecret" not in m and "pastedtwolines" not in m for m in messages)
    assert any("LANGSMITH_API_KEY" in m for m in messages), "nothing says the key is what fails"


def test_doctor_never_prints_a_key_with_a_line_break():
    completed = run_child(
        [str(Path(sys.executable).parent / "otel-langsmith"), "doctor"],
        env=child_environment(LANGSMITH_API_KEY=NEWLINE_KEY, LANGSMITH_ENDPOINT=closed_port_url()),
        timeout=60,
    )
    printed = completed.stdout + completed.stderr
    assert "pastedtwolines" not in printed and "secondlinesecret" not in printed, printed


@pytest.mark.parametrize(
    "proxy",
    ["garbage", "http://[::1", ":::::", "ftp://proxy.example", "socks9://x", "http://user:proxysecret@127.0.0.1:1"],
)
def test_a_garbage_proxy_never_crashes_nor_hangs(langsmith, monkeypatch, caplog, proxy):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    exporter = made(langsmith.exporter(retry_policy=FAST, shutdown_grace=0.5, timeout=2))
    _spans_through(exporter)
    started = time.monotonic()
    exporter.force_flush(2_000)
    exporter.shutdown(3_000)
    assert time.monotonic() - started < 5
    assert all("proxysecret" not in r.getMessage() for r in caplog.records)
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("spool_dir", ["/proc/self", "/dev/null", "nul"], ids=["chmod_refused", "a_file", "nul_byte"])
def test_a_spool_dir_that_cannot_be_used_keeps_runs_in_memory(langsmith, tmp_path, monkeypatch, caplog, spool_dir):
    """``/proc/self`` stands for any directory whose mode cannot be tightened (a CIFS or vfat mount);
    a NUL byte for a path from a configuration file of garbage."""
    deaths = thread_deaths(monkeypatch)
    directory = str(tmp_path / "spool\x00x") if spool_dir == "nul" else spool_dir
    langsmith.stop()
    exporter = made(langsmith.exporter(spool_dir=directory, retry_policy=FAST, shutdown_grace=0.5))
    for span in make_spans(5, "run"):
        exporter.export([span])  # as the SDK's batch thread calls it: it must not raise
        time.sleep(0.05)
    time.sleep(0.3)
    langsmith.start()
    exporter.force_flush(5_000)
    exporter.shutdown(3_000)
    assert names(langsmith) == {f"run-{i}" for i in range(5)}, exporter.stats().dropped
    assert langsmith.duplicate_posts == 0
    assert deaths == [], deaths
    assert tracebacks(caplog) == []
