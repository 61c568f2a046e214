"""Proxies from the environment: read once per exporter, as requests would read them per request."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_langsmith import LangSmithSpanExporter


class _Forward(BaseHTTPRequestHandler):
    """A forward HTTP proxy: requests come with an absolute URL, go on to its host."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        self.server.seen.append((self.command, self.path))  # type: ignore[attr-defined]
        target = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        upstream.request(self.command, target.path or "/", body=body or None, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = do_PATCH = _forward


@pytest.fixture
def proxy() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Forward)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _export_one(receiver, name: str) -> None:
    exporter = LangSmithSpanExporter(endpoint=receiver.url, api_key=receiver.api_key)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("proxied").start_as_current_span(name):
        pass
    assert exporter.force_flush(10_000)
    provider.shutdown()


def test_runs_go_through_the_proxy_the_environment_names(langsmith_receiver, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    _export_one(langsmith_receiver, "through the proxy")
    assert [run["name"] for run in langsmith_receiver.runs.values()] == ["through the proxy"]
    paths = [path for _, path in proxy.seen]
    assert f"{langsmith_receiver.url}/runs/multipart" in paths, paths


def test_no_proxy_is_honoured(langsmith_receiver, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    _export_one(langsmith_receiver, "direct")
    assert [run["name"] for run in langsmith_receiver.runs.values()] == ["direct"]
    assert proxy.seen == []
