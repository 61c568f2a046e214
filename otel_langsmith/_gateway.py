"""The gateway's core: OTLP trace requests in, through the exporter's own pipeline, one per tenant.

HTTP is :mod:`~otel_langsmith._gateway_http`'s, gRPC :mod:`~otel_langsmith._gateway_grpc`'s; this
module decides what a request gets:

- **Tenancy.** A request's ``x-api-key`` and ``Langsmith-Project`` headers (as LangSmith's own
  OTLP endpoint takes them) pick the key and the project, else the gateway's own settings. Each
  (key, project) has a pipeline of its own, so runs of different keys never share a batch.
- **Backpressure.** Past the high-water mark (bytes queued and waiting for parents, all tenants
  together) a request is refused with 503 and ``Retry-After``: OTLP senders retry it, so the
  queue stays bounded and nothing is dropped that a sender still holds.
- **Counts.** One log line a minute: spans in, runs sent, requests refused, runs spooled and lost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import _otlp
from ._pipeline import Pipeline
from ._settings import Settings
from ._stats import Stats
from ._transport import Transport

logger = logging.getLogger(__name__)

_PROBE_EVERY = 5.0


@dataclass(frozen=True)
class Limits:
    """What the gateway takes; the defaults suit one replica of a few cores."""

    #: Bytes of a request body, compressed and decompressed alike (413 beyond).
    max_body_bytes: int = 32 << 20
    #: Bytes queued for LangSmith and waiting for parents, all tenants together, past which
    #: requests are refused with 503 until sending catches up.
    high_water_bytes: int = 64 << 20
    #: Connections served at once; more are answered 503 at once.
    max_connections: int = 64
    #: (key, project) pairs with a pipeline at once; an idle one makes room for a new one.
    max_tenants: int = 32
    #: Seconds a refused sender is asked to wait.
    retry_after: int = 2


@dataclass(frozen=True)
class Reply:
    """An answer in HTTP's terms; ``body`` in the request's encoding, ``message`` in words."""

    status: int
    body: bytes = b""
    content_type: str = _otlp.JSON
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    message: str = ""


@dataclass
class _Totals:
    spans_in: int = 0
    spans_rejected: int = 0
    requests_refused: int = 0
    runs_sent: int = 0
    runs_spooled: int = 0
    runs_dropped: int = 0

    def minus(self, other: _Totals) -> _Totals:
        return _Totals(*(a - b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)))


class Tenants:
    """A pipeline per (API key, project), made on first use. Thread-safe."""

    def __init__(self, settings: Settings, *, max_tenants: int) -> None:
        self._settings = settings
        self._max = max_tenants
        self._lock = threading.Lock()
        self._pipelines: OrderedDict[tuple[str | None, str], Pipeline] = OrderedDict()
        # What pipelines shut down to make room had done, so the totals never go back.
        self._retired = _Totals()

    def get(self, api_key: str | None, project: str | None) -> Pipeline | None:
        """The tenant's pipeline; None when every slot is held by a tenant with runs in memory."""
        key = (api_key, project or self._settings.project)
        with self._lock:
            pipeline = self._pipelines.get(key)
            if pipeline is not None:
                self._pipelines.move_to_end(key)
                return pipeline
            if len(self._pipelines) >= self._max and not self._retire_idle():
                return None
            settings = dataclasses.replace(
                self._settings, api_key=api_key, project=key[1], spool_dir=self._spool_for(api_key)
            )
            pipeline = Pipeline(settings, name=f"gateway (project {key[1][:100]!r})")
            self._pipelines[key] = pipeline
            return pipeline

    def _spool_for(self, api_key: str | None) -> str | None:
        """The spool of a key: the gateway's own key uses ``spool_dir`` itself; every other key a
        directory of its own in it, as whatever reads a spool sends it with its own key."""
        spool_dir = self._settings.spool_dir
        if spool_dir is None or api_key == self._settings.api_key:
            return spool_dir
        return os.path.join(spool_dir, "key-" + hashlib.sha256((api_key or "").encode()).hexdigest()[:16])

    def _retire_idle(self) -> bool:
        # The lock is held. The least recently used tenant holding nothing in memory goes (what
        # it spooled stays, for its key's next request); one whose key LangSmith refuses holds
        # nothing either, so made-up keys cannot keep the slots.
        for key, pipeline in self._pipelines.items():
            stats = pipeline.stats()
            if not (stats.queued_runs or stats.waiting):
                del self._pipelines[key]
                pipeline.shutdown(1_000)
                self._retired = _add(self._retired, pipeline.stats())
                return True
        return False

    def all(self) -> list[Pipeline]:
        with self._lock:
            return list(self._pipelines.values())

    def held_bytes(self) -> int:
        return sum(pipeline.held_bytes() for pipeline in self.all())

    def totals(self) -> _Totals:
        with self._lock:
            totals = self._retired
            pipelines = list(self._pipelines.values())
        for pipeline in pipelines:
            totals = _add(totals, pipeline.stats())
        return totals

    def shutdown(self, timeout: float) -> None:
        """Every tenant drains what it holds, together, within ``timeout`` seconds; the rest is spooled."""
        pipelines = self.all()
        threads = [
            threading.Thread(target=pipeline.shutdown, args=(timeout * 1000,), name="otel-langsmith-drain")
            for pipeline in pipelines
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _add(totals: _Totals, stats: Stats) -> _Totals:
    return dataclasses.replace(
        totals,
        runs_sent=totals.runs_sent + stats.runs_exported,
        runs_spooled=totals.runs_spooled + stats.runs_spooled,
        runs_dropped=totals.runs_dropped + stats.runs_dropped,
    )


class Gateway:
    """What each request gets, apart from HTTP. Thread-safe.

    Example::

        gateway = Gateway(Settings.resolve(api_key="lsv2_..."), Limits())
        headers = {"content-type": "application/json"}
        reply = gateway.refusal(headers) or gateway.traces(headers, b'{"resourceSpans": []}')
        assert reply.status == 200
    """

    def __init__(self, settings: Settings, limits: Limits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.limits = limits
        self.tenants = Tenants(settings, max_tenants=limits.max_tenants)
        self._clock = clock
        self._lock = threading.Lock()
        self._spans_in = 0
        self._spans_rejected = 0
        self._refused = 0
        self._reported = _Totals()
        self._probe = Transport(
            endpoint=settings.endpoint, api_key=None, workspace_id=None, timeout=2.0, session=settings.session
        )
        self._probed_at = -float("inf")
        self._reachable = False

    def send_spooled(self) -> None:
        """Start sending what an earlier gateway (or a replica) spooled for the gateway's own key.
        Another key's spool waits for that key's next request, the only place the key comes from."""
        if self.settings.spool_dir and self.settings.api_key:
            default = self.tenants.get(self.settings.api_key, None)
            if default is not None:
                default.send_spooled()

    # -- requests -----------------------------------------------------------------------------------

    def refusal(self, headers: Mapping[str, str]) -> Reply | None:
        """The answer a trace request gets before its body is read, or None to read it."""
        content_type = headers.get("content-type", "")
        if not (headers.get("x-api-key") or self.settings.api_key):
            return self.error(
                content_type,
                401,
                "no API key: send the x-api-key header (this gateway was started without LANGSMITH_API_KEY)",
            )
        if self.tenants.held_bytes() >= self.limits.high_water_bytes:
            return self.busy(content_type, "the gateway's queue is full; retry later")
        return None

    def traces(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """``POST /v1/traces`` with its (lower-cased) headers and body as it came, once
        :meth:`refusal` let it in (before its body was read)."""
        content_type = headers.get("content-type", "")
        try:
            data = _otlp.decompress(body, headers.get("content-encoding", ""), limit=self.limits.max_body_bytes)
            decoded = _otlp.decode(data, content_type)
        except _otlp.TooLarge as exc:
            return self.error(content_type, 413, str(exc))
        except _otlp.Undecodable as exc:
            return self.error(content_type, 400, str(exc))
        del data
        return self.take(headers, decoded)

    def take(self, headers: Mapping[str, str], decoded: _otlp.Decoded) -> Reply:
        """A request's decoded spans to its tenant's pipeline: 200 (with the partial success), or 503."""
        content_type = headers.get("content-type", "")
        pipeline = self.tenants.get(headers.get("x-api-key") or self.settings.api_key, headers.get("langsmith-project"))
        if pipeline is None:
            return self.busy(content_type, "every tenant slot is busy; retry later")
        if not pipeline.export(decoded.spans):
            return self.busy(content_type, "the gateway is shutting down")
        with self._lock:
            self._spans_in += len(decoded.spans)
            self._spans_rejected += decoded.rejected
        body = _otlp.answer(content_type, rejected=decoded.rejected, message=decoded.reason)
        return Reply(200, body, _otlp.answer_type(content_type))

    def busy(self, content_type: str, message: str) -> Reply:
        """503 with ``Retry-After``: the sender's retry does the backpressure."""
        with self._lock:
            self._refused += 1
        # 503, not 429: both are retryable in the OTLP/HTTP spec, but older exporters retry 5xx only.
        return self.error(content_type, 503, message, retry_after=self.limits.retry_after)

    @staticmethod
    def error(content_type: str, status: int, message: str, *, retry_after: int | None = None) -> Reply:
        """An OTLP error answer (a ``google.rpc.Status``) in the request's encoding."""
        body = _otlp.status(content_type, _otlp.RPC_CODES.get(status, 2), message, retry_after=retry_after)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Reply(status, body, _otlp.answer_type(content_type), headers, message)

    # -- health -------------------------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        """Ready when LangSmith answers and the queue is below its mark."""
        held = self.tenants.held_bytes()
        if held >= self.limits.high_water_bytes:
            return False, f"queue at its mark ({held} bytes held)"
        # Not whether a tenant's last batch was taken: any sender could make that false for good
        # with a key LangSmith refuses, and a full queue already says it here.
        if not self._endpoint_answers():
            return False, f"{self._probe.shown_endpoint} does not answer"
        return True, "ready"

    def _endpoint_answers(self) -> bool:
        with self._lock:
            if self._clock() - self._probed_at < _PROBE_EVERY:
                return self._reachable
            self._probed_at = self._clock()
        response = self._probe.request("GET", "/info", deadline=time.monotonic() + 2.0)
        reachable = response.status is not None and response.status < 500 and not response.foreign
        with self._lock:
            self._reachable = reachable
        return reachable

    # -- counts -------------------------------------------------------------------------------------

    def totals(self) -> _Totals:
        totals = self.tenants.totals()
        with self._lock:
            return dataclasses.replace(
                totals, spans_in=self._spans_in, spans_rejected=self._spans_rejected, requests_refused=self._refused
            )

    def report(self) -> None:
        """Log what happened since the last report, in one line (nothing when nothing did)."""
        now = self.totals()
        last, self._reported = self._reported, now
        delta = now.minus(last)
        if not any(dataclasses.astuple(delta)):
            return
        logger.info(
            "gateway: %d span(s) in, %d rejected; %d run(s) sent, %d spooled, %d lost; %d request(s) refused (busy)",
            delta.spans_in,
            delta.spans_rejected,
            delta.runs_sent,
            delta.runs_spooled,
            delta.runs_dropped,
            delta.requests_refused,
        )

    def close(self, timeout: float) -> None:
        """Every tenant sends what it holds within ``timeout`` seconds, or spools it."""
        self.tenants.shutdown(timeout)
        self._probe.close()
        self.report()
