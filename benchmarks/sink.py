"""The loopback sink of ``bench_e2e.py``: LangSmith's ingestion and OTLP/HTTP, counting what arrives.

    python benchmarks/sink.py       # prints its URL, serves until stdin closes

Each contender sends under a path of its own (``http://127.0.0.1:PORT/<tag>/...``) and the sink
counts per tag: requests and bytes as they came over the wire, LangSmith runs completed (a ``post``
part carrying an ``end_time``, or a ``patch``) with each run id once, and OTLP spans.
``GET /_counts/<tag>`` answers those counts as JSON. ``/info`` advertises multipart and zstd as
LangSmith does, so every LangSmith client compresses as it would in production.

It runs in a process of its own, and reads the bodies only when asked for the counts (after the
contender is done), so that its parsing never competes with a contender for the CPU or the GIL.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import zstandard
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

INFO = json.dumps(
    {
        "version": "0.10.0",
        "batch_ingest_config": {
            "use_multipart_endpoint": True,
            "scale_up_qsize_trigger": 1000,
            "scale_up_nthreads_limit": 16,
            "scale_down_nempty_trigger": 4,
            "size_limit": 100,
            "size_limit_bytes": 20 << 20,
        },
        "instance_flags": {"zstd_compression_enabled": True},
    }
).encode()
_NAME = re.compile(rb'name="(post|patch)\.([0-9a-f-]{36})"')
_ENDED = re.compile(rb'"end_time":\s*"')


class Tally:
    """What one tag received. Bodies are kept as they came and read when the counts are asked
    for, after the contender is done: the sink's parsing never competes with a contender for CPU."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.completed: set[str] = set()
        self.parts = 0  # post and patch parts: a run sent twice counts twice here
        self.otlp_spans = 0
        self.unread: list[tuple[str, str, str, bytes]] = []  # route, encoding, content type, body

    def read(self) -> None:
        for route, encoding, content_type, raw in self.unread:
            body = _decoded(raw, encoding)
            if route.endswith("v1/traces"):
                self.otlp_spans += _otlp_spans(body)
                continue
            if route.endswith("runs/multipart"):
                runs = _runs(body, content_type)
            elif route.endswith("runs/batch"):
                runs = _batch_runs(body)
            else:
                continue
            self.parts += len(runs)
            self.completed.update(run_id for run_id, ended in runs if ended)
        self.unread = []

    def counts(self) -> dict[str, Any]:
        self.read()
        return {
            "requests": self.requests,
            "bytes": self.bytes,
            "runs": len(self.completed),
            "run_parts": self.parts,
            "otlp_spans": self.otlp_spans,
        }


_tallies: dict[str, Tally] = defaultdict(Tally)
_lock = threading.Lock()


def _decoded(body: bytes, encoding: str) -> bytes:
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if encoding == "gzip":
        return gzip.decompress(body)
    return body


def _runs(body: bytes, content_type: str) -> list[tuple[str, bool]]:
    """(run id, ended) for each run operation of a multipart body."""
    boundary = content_type.partition("boundary=")[2].strip('"').encode()
    found = []
    for part in body.split(b"--" + boundary):
        head, _, payload = part.partition(b"\r\n\r\n")
        match = _NAME.search(head)
        if match is None:
            continue
        operation, run_id = match.groups()
        found.append((run_id.decode(), operation == b"patch" or _ENDED.search(payload) is not None))
    return found


def _batch_runs(body: bytes) -> list[tuple[str, bool]]:
    document = json.loads(body)
    found = [(run["id"], bool(run.get("end_time"))) for run in document.get("post") or ()]
    return found + [(run["id"], True) for run in document.get("patch") or ()]


def _otlp_spans(body: bytes) -> int:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK wait

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/_counts/"):
            with _lock:
                counts = _tallies[self.path.removeprefix("/_counts/")].counts()
            self._answer(200, json.dumps(counts).encode())
        else:
            self._answer(200, INFO)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        tag, _, route = self.path.lstrip("/").partition("/")
        received = (route, self.headers.get("Content-Encoding", ""), self.headers.get("Content-Type", ""), raw)
        with _lock:
            tally = _tallies[tag]
            tally.requests += 1
            tally.bytes += len(raw)
            tally.unread.append(received)
        if route.endswith("v1/traces"):
            self._answer(200, b"", "application/x-protobuf")
        else:
            self._answer(202, b"{}")

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
