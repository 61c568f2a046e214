"""The gateway's OTLP/gRPC service, ``TraceService/Export``, beside OTLP/HTTP.

The OpenTelemetry Collector's ``loadbalancing`` exporter (trace-id routing across replicas) sends
OTLP/gRPC only, so the gateway takes it too. Every decision is :class:`~otel_langsmith._gateway.Gateway`'s,
as for HTTP; only the statuses are gRPC's: UNAVAILABLE with a ``RetryInfo`` for backpressure (the
senders' retry honours it), UNAUTHENTICATED without a key, INVALID_ARGUMENT for spans that cannot
be read, and the partial success in the answer. gRPC itself bounds a message's size (also
decompressed) and the calls served at once (RESOURCE_EXHAUSTED beyond).
"""

from __future__ import annotations

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


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        # Metadata keys arrive lower-cased, as HTTP's headers are made here.
        headers = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        headers.update(_PROTOBUF)
        reply = self._gateway.refusal(headers)
        if reply is None:
            try:
                reply = self._gateway.take(headers, _otlp.from_request(request))
            except _otlp.Undecodable as exc:
                reply = self._gateway.error(_otlp.PROTOBUF, 400, str(exc))
        if reply.status == 200:
            return trace_service_pb2.ExportTraceServiceResponse.FromString(reply.body)
        _abort(context, reply)


def _abort(context: grpc.ServicerContext, reply: Reply) -> None:
    # The google.rpc.Status in the trailers is gRPC's rich error, where the Collector reads a
    # RetryInfo; OpenTelemetry's Python exporter reads the RetryInfo from a trailer of its own.
    trailers: tuple[tuple[str, str | bytes], ...] = (("grpc-status-details-bin", reply.body),)
    retry_after = reply.headers.get("Retry-After")
    if retry_after is not None:
        trailers += (("google.rpc.retryinfo-bin", _otlp.retry_info(int(retry_after))),)
    context.set_trailing_metadata(trailers)
    context.abort(_CODES.get(reply.status, grpc.StatusCode.INTERNAL), reply.message)


class GrpcServer:
    """Serves ``gateway``'s ``TraceService`` on (host, port) from :meth:`start`; port 0 picks one."""

    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        limits = gateway.limits
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="otel-langsmith-grpc"),
            maximum_concurrent_rpcs=limits.max_connections,
            options=[("grpc.max_receive_message_length", limits.max_body_bytes)],
        )
        # The generated registration is untyped.
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(gateway), self._server)  # type: ignore[no-untyped-call]
        try:
            bound = self._server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        except RuntimeError as exc:  # newer gRPC raises where older ones return 0
            raise OSError(str(exc)) from None
        if not bound:
            raise OSError("the address is in use or not available")
        self.address = f"{host}:{bound}"

    def start(self) -> GrpcServer:
        self._server.start()
        return self

    def stop(self, timeout: float) -> None:
        """No new call; calls in progress get ``timeout`` seconds to finish."""
        self._server.stop(timeout).wait(timeout)
