"""The gateway's OTLP/gRPC service, ``TraceService/Export``, beside OTLP/HTTP.

The OpenTelemetry Collector's ``loadbalancing`` exporter (trace-id routing across replicas) sends
OTLP/gRPC only, so the gateway takes it too. Every decision is :class:`~otel_langsmith._gateway.Gateway`'s,
as for HTTP; only the statuses are gRPC's: UNAVAILABLE with a ``RetryInfo`` for backpressure (the
senders' retry honours it), UNAUTHENTICATED without a key, INVALID_ARGUMENT for spans that cannot
be read, and the partial success in the answer.

The server is gRPC's asyncio one, on a thread of its own: a call waiting for its message holds no
thread, so stalled senders cannot take the others' turn. Converting runs on a few threads beside
it; past the calls served at once (the HTTP side's connection limit) a call is answered
UNAVAILABLE with a ``RetryInfo`` at once, which every OTLP sender retries (gRPC's own limit would
answer RESOURCE_EXHAUSTED without one, which the Collector drops).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from . import _otlp
from ._gateway import Gateway, Reply

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
_PROTOBUF = {"content-type": _otlp.PROTOBUF}
# Threads converting at once: the work holds the interpreter's lock, more would only wait.
_CONVERTING = 4
# A Collector's exporter keeps one connection to a replica and sends on ten at most by default.
_STREAMS_PER_CONNECTION = 16
# What a call's metadata may take in all: as much as the HTTP listener takes of a header line.
_MAX_METADATA_BYTES = 64 << 10


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, gateway: Gateway, pool: futures.Executor) -> None:
        self._gateway = gateway
        self._pool = pool
        # Calls taken and not yet answered; more are refused at once (their messages let go).
        self._slots = threading.BoundedSemaphore(gateway.limits.max_connections)

    async def Export(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        # Metadata keys arrive lower-cased, as HTTP's headers are made here.
        headers = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        headers.update(_PROTOBUF)
        reply = self._gateway.refusal(headers)
        if reply is None and not self._slots.acquire(blocking=False):
            reply = self._gateway.busy(_otlp.PROTOBUF, "the gateway is at its limit of calls; retry later")
        elif reply is None:
            try:
                reply = await asyncio.get_running_loop().run_in_executor(self._pool, self._take, headers, request)
            finally:
                self._slots.release()
        if reply.status == 200:
            return trace_service_pb2.ExportTraceServiceResponse.FromString(reply.body)
        await _abort(context, reply)

    def _take(self, headers: dict[str, str], request: Any) -> Reply:
        try:
            return self._gateway.take(headers, _otlp.from_request(request))
        except _otlp.Undecodable as exc:
            return self._gateway.error(_otlp.PROTOBUF, 400, str(exc))


async def _abort(context: grpc.aio.ServicerContext[Any, Any], reply: Reply) -> None:
    # The google.rpc.Status in the trailers is gRPC's rich error, where the Collector reads a
    # RetryInfo; OpenTelemetry's Python exporter reads the RetryInfo from a trailer of its own.
    trailers: tuple[tuple[str, str | bytes], ...] = (("grpc-status-details-bin", reply.body),)
    retry_after = reply.headers.get("Retry-After")
    if retry_after is not None:
        trailers += (("google.rpc.retryinfo-bin", _otlp.retry_info(int(retry_after))),)
    context.set_trailing_metadata(trailers)
    await context.abort(_CODES.get(reply.status, grpc.StatusCode.INTERNAL), reply.message)


class GrpcServer:
    """Serves ``gateway``'s ``TraceService`` on (host, port) from :meth:`start`; port 0 picks one."""

    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        self._pool = futures.ThreadPoolExecutor(max_workers=_CONVERTING, thread_name_prefix="otel-langsmith-grpc")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="otel-langsmith-grpc-loop", daemon=True)
        self._thread.start()
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self._server, bound = self._call(self._make(gateway, target))
        except (RuntimeError, OSError) as exc:  # newer gRPC raises where older ones return 0
            self._stop_loop()
            raise OSError(str(exc) or "the address is in use or not available") from None
        self.address = f"{host}:{bound}"

    async def _make(self, gateway: Gateway, target: str) -> tuple[grpc.aio.Server, int]:
        options = [
            ("grpc.max_receive_message_length", gateway.limits.max_body_bytes),
            # Calls a connection may have open at once; more wait at the sender, their messages
            # unsent: what bounds the messages held by calls that will be refused.
            ("grpc.max_concurrent_streams", _STREAMS_PER_CONNECTION),
            # Past its soft limit gRPC refuses metadata at random, up to its hard one: one limit, so
            # that a call is taken or refused whatever the draw, as the HTTP listener's headers are.
            ("grpc.max_metadata_size", _MAX_METADATA_BYTES),
            ("grpc.absolute_max_metadata_size", _MAX_METADATA_BYTES),
        ]
        server = grpc.aio.server(options=options)
        # The generated registration is untyped.
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(gateway, self._pool), server
        )
        bound = server.add_insecure_port(target)
        if not bound:
            raise OSError("the address is in use or not available")
        return server, bound

    def _call(self, coroutine: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> GrpcServer:
        self._call(self._server.start())
        return self

    def stop(self, timeout: float) -> None:
        """No new call; calls in progress get ``timeout`` seconds to finish."""
        try:
            self._call(self._server.stop(timeout), timeout + 5)
        finally:
            self._stop_loop()
            self._pool.shutdown(wait=False)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
