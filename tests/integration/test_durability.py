"""What survives a process: the spool across a SIGKILL, several processes on one spool, fork, and
the exporter's own HTTP calls under active HTTP instrumentation."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from helpers import run_child
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_langsmith import RetryPolicy
from otel_langsmith import _spool as spool_module
from otel_langsmith._spool import Spool, _owner, decode_file, encode_file
from otel_langsmith._wire import encode_run
from otel_langsmith.testing import Fault

WORKER = Path(__file__).parent / "spool_worker.py"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def worker(*args: str) -> tuple[int, dict]:
    completed = run_child([sys.executable, str(WORKER), *args])
    lines = completed.stdout.strip().splitlines()
    return completed.returncode, (json.loads(lines[-1]) if lines else {"stderr": completed.stderr})


def test_runs_spooled_by_a_killed_process_are_delivered_by_the_next(langsmith_receiver, tmp_path):
    code, written = worker("write", str(tmp_path), closed_port_url(), langsmith_receiver.api_key, "50")
    assert code == -9  # killed, not shut down
    assert written["runs_spooled"] == 50 and written["runs_dropped"] == 0
    # Some may be held by the killed process's sender thread: the next process takes them back.
    assert len(list(tmp_path.glob("*.batch*"))) >= 1

    code, replayed = worker("replay", str(tmp_path), langsmith_receiver.url, langsmith_receiver.api_key)
    assert code == 0, replayed
    assert replayed["flushed"] is True
    assert sorted(r["name"] for r in langsmith_receiver.runs.values()) == sorted(f"spooled-{i}" for i in range(50))
    assert langsmith_receiver.duplicate_posts == 0 and langsmith_receiver.rejected == []
    assert list(tmp_path.glob("*.batch*")) == []


def test_several_processes_share_a_spool_without_duplicates(langsmith_receiver, tmp_path):
    code, _ = worker("write", str(tmp_path), closed_port_url(), langsmith_receiver.api_key, "200", "10")
    assert code == -9
    assert len(list(tmp_path.glob("*.batch*"))) >= 10
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(
            pool.map(
                lambda _: worker("replay", str(tmp_path), langsmith_receiver.url, langsmith_receiver.api_key), range(3)
            )
        )
    assert all(code == 0 for code, _ in results)
    assert langsmith_receiver.wait_for_runs(200, timeout=10)
    assert len(langsmith_receiver.runs) == 200 and langsmith_receiver.duplicate_posts == 0
    assert list(tmp_path.glob("*.batch*")) == []


def test_a_corrupt_spool_file_is_set_aside_and_the_rest_delivered(langsmith_receiver, tmp_path, caplog):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    good = [encode_run({"id": "00000000-0000-0000-0000-000000000001", "trace_id": "x", "name": "n"})]
    spool.write(good)
    (tmp_path / "00000000000000000000-1-deadbeef.batch").write_bytes(b'{"v": 1, "runs": [], "sha256": "no"}\ngarbage')
    (tmp_path / "00000000000000000001-1-deadbeef.batch").write_bytes(b"\xff\xfe not even json")
    for index in range(2, 50):  # a directory of junk: a line now and then, not one a file
        (tmp_path / f"{index:020d}-1-deadbeef.batch").write_bytes(b"junk")
    with caplog.at_level(logging.ERROR, logger="otel_langsmith"):
        taken = spool.take()
    assert taken is not None and [r.run_id for r in taken[1]] == [good[0].run_id]
    assert sorted(p.name for p in (tmp_path / "corrupt").iterdir())[:2] == [
        f"00000000000000000000-1-deadbeef.batch.{_owner()}.taken",
        f"00000000000000000001-1-deadbeef.batch.{_owner()}.taken",
    ]
    assert spool.corrupt_files == 50 and len(list((tmp_path / "corrupt").iterdir())) == 50
    assert caplog.text.count("unreadable") == 1


def test_spool_files_round_trip_and_detect_tampering():
    batch = [encode_run({"id": f"id-{i}", "trace_id": "t", "inputs": {"i": i}}) for i in range(3)]
    data = encode_file(batch)
    assert decode_file(data) == batch
    with pytest.raises(ValueError, match="checksum"):
        decode_file(data[:-1] + b"x")


def test_the_spool_is_bounded_and_drops_its_oldest(tmp_path, caplog):
    spool = Spool(tmp_path / "spool", max_bytes=3_000)
    batch = [encode_run({"id": "r", "trace_id": "t", "inputs": {"pad": "p" * 900}})]
    dropped = sum(spool.write(batch) for _ in range(6))
    assert sum(p.stat().st_size for p in (tmp_path / "spool").glob("*.batch")) <= 3_000
    assert dropped >= 3


def test_spools_sharing_a_directory_keep_its_bound_once_they_count_it_again(tmp_path, monkeypatch):
    # A spool counts the directory at most once per _RECOUNT seconds while its own writes fit:
    # another process's writes since may take the directory over its bound until then, not after.
    monkeypatch.setattr(spool_module, "_RECOUNT", 0.2)
    batch = [encode_run({"id": "r", "trace_id": "t", "inputs": {"pad": "p" * 900}})]
    size = len(encode_file(batch))
    first, second = (Spool(tmp_path, max_bytes=3 * size) for _ in range(2))

    def held() -> int:
        return len(list(tmp_path.glob("*.batch")))

    assert sum(first.write(batch) for _ in range(2)) == 0
    assert sum(second.write(batch) for _ in range(2)) == 1 and held() == 3  # it counted the first's
    first.write(batch)  # within its count's interval: the second's writes may not be seen yet
    assert held() <= 4
    time.sleep(0.25)
    assert first.write(batch) == 2 and held() == 3


def test_a_file_taken_by_a_dead_process_is_given_back(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.write([encode_run({"id": "r", "trace_id": "t"})])
    (path,) = tmp_path.glob("*.batch")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    os.rename(path, path.with_name(f"{path.name}.{int(dead.stdout)}.taken"))
    taken = spool.take()
    assert taken is not None and taken[1][0].run_id == "r"


def test_a_claim_from_another_host_is_left_alone_until_it_is_stale(tmp_path):
    # Replicas on other machines share the volume: their pids mean nothing here, their claims' age does.
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.write([encode_run({"id": "r", "trace_id": "t"})])
    (path,) = tmp_path.glob("*.batch")
    claimed = path.with_name(f"{path.name}.other_host-{os.getpid() + 1}.taken")
    os.rename(path, claimed)
    assert spool.take() is None  # in flight on the other host
    old = time.time() - 3600
    os.utime(claimed, (old, old))
    taken = spool.take()
    assert taken is not None and taken[1][0].run_id == "r"


def test_no_span_comes_from_the_exporters_own_requests(langsmith_receiver):
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    exporter = langsmith_receiver.exporter(retry_policy=RetryPolicy(initial_backoff=0.05, max_backoff=0.1))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    RequestsInstrumentor().instrument(tracer_provider=provider)
    URLLib3Instrumentor().instrument(tracer_provider=provider)
    try:
        # The first request fails: the retry then goes out from the exporter's own thread.
        langsmith_receiver.plan(Fault(503), Fault(503))
        tracer = provider.get_tracer("app")
        with tracer.start_as_current_span("app-span"):
            pass
        # An instrumented call of the application's own does make a span: the instrumentation is live.
        requests.get(langsmith_receiver.url + "/info", timeout=5)
        provider.force_flush()
        assert langsmith_receiver.wait_for_runs(2, timeout=10)
        provider.shutdown()
    finally:
        RequestsInstrumentor().uninstrument()
        URLLib3Instrumentor().uninstrument()
    names = sorted(span.name for span in memory.get_finished_spans())
    assert names == ["GET", "app-span"]  # the application's GET; nothing from the exporter
    assert len([r for r in langsmith_receiver.requests if r.method == "POST"]) >= 3
