"""What the bridge costs against what users would otherwise run, on the same spans, in one process.

    make bench        # or: python benchmarks/bench_client.py [--traces N] [--rounds R]

The span mix (``spanmix.py``: agent traces of model calls with JSON conversations, tools and HTTP
client spans, about 5,000 spans) is recorded once by the real SDK, then each contender handles all
of it, round after round, and the median round is reported per span:

- bridge: everything the exporter does before the network: convert, assemble (children wait for
  their parents, as behind a BatchSpanProcessor: the spans come in 512-span exports in end order),
  encode, frame as multipart, compress (zstd, as against LangSmith);
- OTLP: ``encode_spans(spans).SerializeToString()`` of opentelemetry-exporter-otlp-proto-common,
  what ``OTLPSpanExporter`` does before the network;
- LangSmith SDK: its own serialization of the same run dicts into multipart parts (what its
  background thread does per run before compressing);
- floor: ``orjson.dumps`` of the same run dicts, nothing else;
- the bridge's encoding alone: its last stages (encode, multipart, zstd) over the runs it placed,
  to show what the cost targets leave for conversion and placement.

Then end to end: spans per second through a ``BatchSpanProcessor`` to a local receiver (this
package's LangSmith receiver; a local OTLP sink for ``OTLPSpanExporter``), each server in a child
process so that it does not take the exporter's GIL; and the bytes each run costs on the wire.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
from langsmith._internal._operations import (
    encode_multipart_parts_and_context,
    serialize_run_dict,
    serialized_run_operation_to_multipart_parts_and_context,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

sys.path.insert(0, os.path.dirname(__file__))

from spanmix import SPANS_PER_TRACE, record

from otel_langsmith import LangSmithSpanExporter
from otel_langsmith import _wire as wire
from otel_langsmith._assembly import Assembler
from otel_langsmith._convert import SpanConverter
from otel_langsmith._convert.redact import Redaction
from otel_langsmith._transport import DEFAULT_SIZE_LIMIT, DEFAULT_SIZE_LIMIT_BYTES

EXPORT_SIZE = 512  # BatchSpanProcessor's default max_export_batch_size
BOUNDARY = wire.new_boundary()


def _placed(spans: Sequence[ReadableSpan]) -> Iterator[list[dict[str, Any]]]:
    """The runs ready to send after each 512-span export: converted and assembled, as
    ``LangSmithSpanExporter.export`` does it."""
    convert = SpanConverter(project="bench", redaction=Redaction(False, False, None, None), logs=lambda _, __: ())
    assembler = Assembler(max_wait=300.0, max_spans=20_000, max_bytes=64 << 20)
    for offset in range(0, len(spans), EXPORT_SIZE):
        pendings = [convert(span) for span in spans[offset : offset + EXPORT_SIZE]]
        yield assembler.add([p for p in pendings if p is not None], now=0.0)


def _encode(run: dict[str, Any]) -> wire.EncodedRun:
    # As Delivery does: each run checked against the server's size limit.
    encoded = wire.encode_run(run)
    if encoded.multipart_size > DEFAULT_SIZE_LIMIT_BYTES:
        raise ValueError("no run of the mix should need shrinking")
    return encoded


def encode_and_compress(ready: Sequence[dict[str, Any]]) -> list[tuple[bytes, str]]:
    """The bridge's last stages alone, as ``Delivery.send`` runs them: encode each placed run,
    cut batches, frame each as multipart and compress it."""
    bodies = []
    encoded = [_encode(run) for run in ready]
    for batch in wire.batches(encoded, max_operations=DEFAULT_SIZE_LIMIT, max_bytes=DEFAULT_SIZE_LIMIT_BYTES):
        # Delivery heads each request with the batch's uncompressed size.
        body = wire.compress(wire.multipart_body(batch, BOUNDARY), "zstd")
        bodies.append((body, str(sum(run.size for run in batch))))
    return bodies


def bridge(spans: Sequence[ReadableSpan]) -> list[tuple[bytes, str]]:
    """The exporter's client-side path, stage for stage as ``LangSmithSpanExporter.export`` and
    ``Delivery.send`` run it, minus the network."""
    return [body for ready in _placed(spans) for body in encode_and_compress(ready)]


def bridge_runs(spans: Sequence[ReadableSpan]) -> list[dict[str, Any]]:
    """The run dicts the bridge sends for ``spans`` (the other contenders' input)."""
    return [run for ready in _placed(spans) for run in ready]


def langsmith_sdk(runs: Sequence[dict[str, Any]]) -> bytes:
    chunks: list[bytes] = []
    for run in runs:
        # serialize_run_dict pops the out-of-band fields: it gets a copy, as the SDK's queue does.
        operation = serialize_run_dict("post", dict(run))
        parts, _ = serialized_run_operation_to_multipart_parts_and_context(operation)
        for header, payload in encode_multipart_parts_and_context(parts, BOUNDARY):
            chunks += (header, payload, b"\r\n")  # type: ignore[list-item]
    return b"".join(chunks)


def floor(runs: Sequence[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(run) for run in runs]


def otlp(spans: Sequence[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


BRIDGE = "bridge (convert+assemble+encode+zstd)"
ENCODING = "bridge's encoding alone (encode+multipart+zstd of its runs)"
OTLP = "OTLP encode_spans().SerializeToString()"
SDK = "LangSmith SDK multipart serialization"
FLOOR = "floor: orjson.dumps(run)"


def contenders(spans: Sequence[ReadableSpan], runs: Sequence[dict[str, Any]]) -> dict[str, Callable[[], object]]:
    """Each contender's work over the same spans (or the runs the bridge makes of them), by name."""
    return {
        BRIDGE: lambda: bridge(spans),
        ENCODING: lambda: encode_and_compress(runs),
        OTLP: lambda: otlp(spans),
        SDK: lambda: langsmith_sdk(runs),
        FLOOR: lambda: floor(runs),
    }


def print_costs(costs: dict[str, float], unit: str, cell: Callable[[float], str]) -> None:
    """The head of a results table: each contender's cost per span, and the bridge's ratio to it."""
    print(f"| measure | {unit} | ratio |")
    print("|---|---|---|")
    for name, value in costs.items():
        if name == BRIDGE:
            ratio = ""
        elif name == ENCODING:
            # The bridge less its conversion and placement, held to the targets' two baselines.
            ratio = f"this / SDK = {value / costs[SDK]:.2f}x, this / floor = {value / costs[FLOOR]:.1f}x"
        else:
            ratio = f"bridge / this = {costs[BRIDGE] / value:.2f}x"
        print(f"| {name} | {cell(value)} | {ratio} |")


def print_budgets(costs: dict[str, float], cell: Callable[[float], str]) -> None:
    """What issue 6's cost targets leave for conversion and placement, once the bridge has encoded,
    framed and compressed its runs (negative: the target is below the encoding alone)."""
    targets = {"0.5x OTLP": 0.5 * costs[OTLP], "1.0x SDK": costs[SDK], "3x floor": 3 * costs[FLOOR]}
    spent = costs[BRIDGE] - costs[ENCODING]
    print()
    print(f"conversion and placement now: {cell(spent)} per span; left for them under each target:")
    for target, bound in targets.items():
        print(f"  <= {target}: {cell(bound - costs[ENCODING])}")


def median_us_per_span(contenders: dict[str, Callable[[], object]], spans: int, rounds: int) -> dict[str, float]:
    """Each contender once per round, in turn, so that all of them meet the same process state
    (heap, caches, other load on the machine); the median round of each, per span."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, work in contenders.items():
            gc.collect()
            started = time.perf_counter()
            work()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) / spans * 1e6 for name, times in samples.items()}


# The same sink for both exporters, in a child process so that it does not take the exporter's GIL:
# it reads each request whole and answers at once (LangSmith's /info included), so that the
# rates compare the exporters, not the servers. The receiver in otel_langsmith.testing checks
# what the bridge sends (the test suite does that); here it would only measure its own parsing.
_SINK = """
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
received = {"requests": 0, "bytes": 0}
INFO = (
    b'{"batch_ingest_config": {"use_multipart_endpoint": true, "size_limit": 100, "size_limit_bytes": 20971520},'
    b' "instance_flags": {"zstd_compression_enabled": true}}'
)
class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK wait
    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(200, INFO, "application/json")
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received["requests"] += 1
        received["bytes"] += len(body)
        if self.path.endswith("/v1/traces"):
            self.answer(200, b"", "application/x-protobuf")
        else:
            self.answer(202, b"{}", "application/json")
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
sys.stdin.read()
print(received["requests"], received["bytes"], flush=True)
"""


def _sink() -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen([sys.executable, "-c", _SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    url = child.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        child.kill()
        raise RuntimeError("the local sink did not start")
    return child, url


def _finish(child: subprocess.Popen[str]) -> tuple[int, int]:
    out, _ = child.communicate("", timeout=60)
    requests, sent = out.split()
    return int(requests), int(sent)


def spans_per_second(exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> float:
    # The whole mix fits the queue; at least one export batch, which the SDK insists on.
    processor = BatchSpanProcessor(exporter, max_queue_size=max(len(spans) + 1, EXPORT_SIZE), schedule_delay_millis=100)
    started = time.perf_counter()
    for span in spans:
        processor.on_end(span)
    processor.force_flush(120_000)
    elapsed = time.perf_counter() - started
    processor.shutdown()
    return len(spans) / elapsed


def end_to_end(spans: Sequence[ReadableSpan]) -> dict[str, tuple[float, int, int]]:
    """Spans per second, requests and bytes sent, for each exporter."""
    exporters: dict[str, Callable[[str], SpanExporter]] = {
        "bridge": lambda url: LangSmithSpanExporter(endpoint=url, api_key="bench", project="bench", compression="zstd"),
        "otlp": lambda url: OTLPSpanExporter(endpoint=f"{url}/v1/traces"),
    }
    results = {}
    for name, make in exporters.items():
        child, url = _sink()
        try:
            rate = spans_per_second(make(url), spans)
        finally:
            requests, sent = _finish(child)
        results[name] = (rate, requests, sent)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=264, help=f"agent traces ({SPANS_PER_TRACE} spans each)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    spans = record(args.traces)
    count = len(spans)
    runs = bridge_runs(spans)
    assert len(runs) == count, f"{len(runs)} runs for {count} spans"
    identity = wire.multipart_body([wire.encode_run(run) for run in runs], BOUNDARY)
    compressed = bridge(spans)

    costs = median_us_per_span(contenders(spans, runs), count, args.rounds)
    rates = end_to_end(spans)

    print(
        f"{count} spans ({args.traces} agent traces), median of {args.rounds} rounds, Python {sys.version.split()[0]}"
    )
    print()
    print_costs(costs, "value", lambda us: f"{us:.1f} us/span")
    ours, theirs = rates["bridge"][0], rates["otlp"][0]
    print(f"| end to end, bridge -> local sink ({rates['bridge'][1]} requests) | {ours:,.0f} spans/s | |")
    print(
        f"| end to end, OTLPSpanExporter -> local sink ({rates['otlp'][1]} requests) | {theirs:,.0f} spans/s "
        f"| bridge / OTLP = {ours / theirs:.2f}x |"
    )
    identity_per_run = len(identity) / count
    zstd_per_run = sum(len(body) for body, _ in compressed) / count
    print(f"| wire bytes per span, identity | {identity_per_run:,.0f} B | |")
    ratio = identity_per_run / zstd_per_run
    print(f"| wire bytes per span, zstd | {zstd_per_run:,.0f} B | identity / zstd = {ratio:.1f}x |")
    print_budgets(costs, lambda us: f"{us:.1f} us")


if __name__ == "__main__":
    main()
