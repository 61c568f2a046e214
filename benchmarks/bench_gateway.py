"""The gateway's throughput: spans per second per core, against the in-process exporter.

    make bench        # or: python benchmarks/bench_gateway.py [--rounds R] [--mix agent ...]

The spans of ``workloads.py``'s mixes (the same seed as ``bench_e2e.py``) go to LangSmith two ways,
to the loopback sink (``sink.py``), which counts the runs that arrive:

- exporter: a child process hands the spans to ``LangSmithSpanExporter.export`` in batches of 512
  (as a ``BatchSpanProcessor`` would) and flushes; its CPU is the process's, from the first
  ``export`` until the flush returns with everything delivered;
- gateway: ``otel-langsmith gateway`` in a process of its own, fed the same spans as OTLP/HTTP
  protobuf requests of 512 spans (encoded beforehand, as an ``OTLPSpanExporter`` sends them) by
  two sender threads that honour 503 and ``Retry-After``; its CPU is read from ``/proc`` from
  before the first request until the sink holds every run.

Every run must arrive before a figure is printed. Spans per CPU-second is spans per second per
core: what one core of a replica sustains, the number to size replicas with.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import workloads  # noqa: E402 (after the path it lives on)
from bench_e2e import _counts, _environment, _sink, child_result  # noqa: E402

RUNS = {"agent": 150, "service": 500, "rag": 2000}
SEED = 11
BATCH = 512
API_KEY = "lsv2_pt_bench"
_TICK = os.sysconf("SC_CLK_TCK")


def spans_of(mix: str) -> list[Any]:
    """The mix's spans, ended by the real SDK as the instrumentations write them."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    traced = workloads.OTelInstrumentation(provider.get_tracer("bench"))
    for run in workloads.generate(mix, RUNS[mix], SEED):
        workloads.drive(run, traced)
    provider.shutdown()
    return list(memory.get_finished_spans())


def batches(spans: Sequence[Any]) -> list[Sequence[Any]]:
    return [spans[start : start + BATCH] for start in range(0, len(spans), BATCH)]


# -- the exporter, in a child -----------------------------------------------------------------------


def exporter_child(mix: str, url: str) -> dict[str, Any]:
    from otel_langsmith import LangSmithSpanExporter

    spans = spans_of(mix)
    exporter = LangSmithSpanExporter(endpoint=url, api_key=API_KEY, project="bench")
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches(spans):
        exporter.export(batch)
    assert exporter.force_flush(120_000), "the exporter did not deliver everything"
    return {"spans": len(spans), "cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}


def measure_exporter(mix: str, url: str, tag: str) -> dict[str, Any]:
    result, _ = child_result(__file__, ["--child", "--mix", mix, "--url", f"{url}/{tag}"], f"the exporter on {mix}")
    _check_delivery("exporter", mix, _counts(url, tag)["runs"], result["spans"])
    return result


# -- the gateway ------------------------------------------------------------------------------------


def _cpu_of(pid: int) -> float:
    """CPU seconds a process has used, all threads (utime + stime from /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _send(url: str, bodies: list[bytes], refused: list[int]) -> None:
    import requests

    session = requests.Session()
    headers = {"Content-Type": "application/x-protobuf"}
    for body in bodies:
        while True:
            answer = session.post(f"{url}/v1/traces", data=body, headers=headers, timeout=60)
            if answer.status_code in (429, 503):
                refused[0] += 1
                time.sleep(min(float(answer.headers.get("Retry-After", "1")), 0.2))
                continue
            answer.raise_for_status()
            break


def measure_gateway(mix: str, spans: Sequence[Any], bodies: list[bytes], url: str, tag: str) -> dict[str, Any]:
    environment = {**_environment(), "LANGSMITH_ENDPOINT": f"{url}/{tag}", "LANGSMITH_API_KEY": API_KEY}
    gateway = subprocess.Popen(
        [sys.executable, "-m", "otel_langsmith._cli", "gateway", "--port", "0", "--project", "bench"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert gateway.stdout is not None
        address = gateway.stdout.readline().strip().rpartition(" ")[2]
        cpu, wall = _cpu_of(gateway.pid), time.perf_counter()
        refused = [0]
        senders = [threading.Thread(target=_send, args=(address, bodies[i::2], refused)) for i in range(2)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        deadline = time.monotonic() + 120
        while (delivered := _counts(url, tag)["runs"]) < len(spans) and time.monotonic() < deadline:
            time.sleep(0.05)
        result = {"spans": len(spans), "cpu": _cpu_of(gateway.pid) - cpu, "wall": time.perf_counter() - wall}
        result["refused"] = refused[0]
    finally:
        gateway.terminate()
        gateway.wait(60)
    _check_delivery("gateway", mix, delivered, len(spans))
    return result


def _check_delivery(contender: str, mix: str, delivered: int, spans: int) -> None:
    if delivered != spans:
        raise SystemExit(f"{contender} on {mix} delivered {delivered} of {spans} runs: not measured")


# -- the report -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mix", action="append", choices=sorted(RUNS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(exporter_child(arguments.mix[0], arguments.url)))
        return

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    sink, url = _sink()
    print("## The gateway against the in-process exporter: spans per CPU-second (per core)\n")
    print("| mix | spans | exporter spans/s/core | gateway spans/s/core | gateway / exporter | gateway wall spans/s |")
    print("|---|---|---|---|---|---|")
    try:
        for mix in arguments.mix or ("agent", "service", "rag"):
            spans = spans_of(mix)
            bodies = [encode_spans(batch).SerializeToString() for batch in batches(spans)]
            exporter, gateway = [], []
            for index in range(arguments.rounds):
                exporter.append(measure_exporter(mix, url, f"exporter-{mix}-{index}"))
                gateway.append(measure_gateway(mix, spans, bodies, url, f"gateway-{mix}-{index}"))
            rate_exporter = statistics.median(r["spans"] / r["cpu"] for r in exporter)
            rate_gateway = statistics.median(r["spans"] / r["cpu"] for r in gateway)
            wall = statistics.median(r["spans"] / r["wall"] for r in gateway)
            print(
                f"| {mix} | {len(spans):,} | {rate_exporter:,.0f} | {rate_gateway:,.0f} | "
                f"{rate_gateway / rate_exporter:.2f}x | {wall:,.0f} |",
                flush=True,
            )
    finally:
        sink.stdin.close() if sink.stdin else None
        sink.wait(30)
    print(f"\nMedians of {arguments.rounds} rounds; every run of every round delivered to the sink.")


if __name__ == "__main__":
    main()
