"""The ``SpanExporter``: convert -> assemble -> deliver."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

import requests
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .assembly import Assembler
from .config import Settings
from .convert import SpanConverter
from .convert.redact import Hook, Redaction
from .delivery import Delivery, RetryPolicy
from .logs import STORE

logger = logging.getLogger(__name__)


class LangSmithSpanExporter(SpanExporter):
    """Exports OpenTelemetry spans to LangSmith as runs, through its multipart ingestion API.

    Every option is keyword-only and optional, read from the environment when not given
    (``LANGSMITH_API_KEY``, ``LANGSMITH_ENDPOINT``, ``LANGSMITH_PROJECT``, ``LANGSMITH_WORKSPACE_ID``
    and ``OTEL_EXPORTER_LANGSMITH_*``). Constructing it does no I/O.

    Example::

        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from otel_langsmith import LangSmithSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(LangSmithSpanExporter(project="my-app")))
        trace.set_tracer_provider(provider)

    Children end before their parents; the exporter holds them until the parent arrives (at most
    ``parent_wait`` seconds, ``max_pending_spans`` spans and ``max_pending_bytes`` bytes), then sends
    the subtree. ``export()`` never raises.

    Args:
        api_key: LangSmith API key (``LANGSMITH_API_KEY``).
        endpoint: API base URL (``LANGSMITH_ENDPOINT``); a self-hosted ``https://host/api/v1`` works.
        project: Project of runs whose span names none (``LANGSMITH_PROJECT``, default ``default``).
        workspace_id: Sent as ``X-Tenant-Id`` (``LANGSMITH_WORKSPACE_ID``).
        timeout: Seconds per HTTP request (``OTEL_EXPORTER_LANGSMITH_TIMEOUT``, default 10).
        parent_wait: Seconds a span waits for its parent (``OTEL_EXPORTER_LANGSMITH_PARENT_WAIT``, 300).
        max_pending_spans: ``OTEL_EXPORTER_LANGSMITH_MAX_PENDING_SPANS`` (20000).
        max_pending_bytes: ``OTEL_EXPORTER_LANGSMITH_MAX_PENDING_BYTES`` (64 MiB).
        export_timeout: Deadline of one export, retries included, in seconds
            (``OTEL_EXPORTER_LANGSMITH_EXPORT_TIMEOUT``, 30).
        compression: ``auto``, ``zstd``, ``gzip`` or ``none`` (``OTEL_EXPORTER_LANGSMITH_COMPRESSION``, auto:
            zstd when the server advertises it).
        max_queue_bytes: Undelivered runs kept in memory for retries (``OTEL_EXPORTER_LANGSMITH_MAX_QUEUE_BYTES``,
            128 MiB); the oldest are dropped, counted and logged beyond it.
        spool_dir: Keep undelivered runs on disk, sent by this or the next process
            (``OTEL_EXPORTER_LANGSMITH_SPOOL_DIR``).
        spool_max_bytes: ``OTEL_EXPORTER_LANGSMITH_SPOOL_MAX_BYTES`` (512 MiB).
        retry_policy: Backoff of retries (:class:`otel_langsmith.RetryPolicy`).
        hide_inputs: Send ``{}`` as every run's inputs (``LANGSMITH_HIDE_INPUTS``).
        hide_outputs: Send ``{}`` as every run's outputs (``LANGSMITH_HIDE_OUTPUTS``).
        process_inputs: ``inputs -> inputs | None``, to redact or transform them (None drops them).
        process_outputs: The same for outputs.
        session: A ``requests.Session`` to send with (proxies, TLS settings).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        endpoint: str | None = None,
        project: str | None = None,
        workspace_id: str | None = None,
        timeout: float | None = None,
        parent_wait: float | None = None,
        max_pending_spans: int | None = None,
        max_pending_bytes: int | None = None,
        export_timeout: float | None = None,
        compression: str | None = None,
        max_queue_bytes: int | None = None,
        spool_dir: str | None = None,
        spool_max_bytes: int | None = None,
        retry_policy: RetryPolicy | None = None,
        hide_inputs: bool | None = None,
        hide_outputs: bool | None = None,
        process_inputs: Hook | None = None,
        process_outputs: Hook | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = Settings.resolve(
            api_key=api_key,
            endpoint=endpoint,
            project=project,
            workspace_id=workspace_id,
            timeout=timeout,
            parent_wait=parent_wait,
            max_pending_spans=max_pending_spans,
            max_pending_bytes=max_pending_bytes,
            export_timeout=export_timeout,
            compression=compression,
            max_queue_bytes=max_queue_bytes,
            spool_dir=spool_dir,
            spool_max_bytes=spool_max_bytes,
            hide_inputs=hide_inputs,
            hide_outputs=hide_outputs,
        )
        self._convert = SpanConverter(
            project=self.settings.project,
            redaction=Redaction(self.settings.hide_inputs, self.settings.hide_outputs, process_inputs, process_outputs),
            logs=STORE.take,
        )
        self._shutdown = threading.Event()
        self._delivery = Delivery.from_settings(
            self.settings, stop=self._shutdown, retry_policy=retry_policy, session=session
        )
        self._transport = self._delivery.transport
        self._assembler = self._new_assembler()
        self._reaper: threading.Thread | None = None
        self._reaper_wake = threading.Condition()
        # export() may run on several threads at once (SimpleSpanProcessor does that).
        self._counts_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        if not self.settings.api_key:
            logger.info("No LangSmith API key is set (LANGSMITH_API_KEY); requests are sent without one")
        self_ref = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (method := self_ref()) and method())

    def _new_assembler(self) -> Assembler:
        return Assembler(
            max_wait=self.settings.parent_wait,
            max_spans=self.settings.max_pending_spans,
            max_bytes=self.settings.max_pending_bytes,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown.is_set():
            logger.warning("LangSmithSpanExporter is shut down; dropping %d span(s)", len(spans))
            return SpanExportResult.FAILURE
        try:
            pendings = [self._convert(span) for span in spans]
            self._count("spans_received", len(spans))
            now = time.monotonic()
            ready = self._assembler.add([p for p in pendings if p is not None], now=now)
            ready += self._assembler.expire(now=now)
            if self._assembler.waiting:
                self._wake_reaper()
            return SpanExportResult.SUCCESS if self._delivery.send(ready) else SpanExportResult.FAILURE
        except Exception:
            logger.exception("LangSmithSpanExporter failed to export %d span(s)", len(spans))
            return SpanExportResult.FAILURE

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Within ``timeout_millis``: send the spans still waiting for a parent (as roots) and what
        the retry queue holds; spool what cannot be sent (with a spool directory), then close."""
        if self._shutdown.is_set():
            return
        deadline = time.monotonic() + timeout_millis / 1000
        # Wakes every retry sleep at once: an export stuck in a backoff returns now.
        self._shutdown.set()
        self._wake_reaper(start=False)
        reaper = self._reaper
        if reaper is not None:
            reaper.join(max(0.0, deadline - time.monotonic()))
        try:
            self._delivery.send(self._assembler.drain("shutdown"), deadline=deadline)
            self._delivery.close(deadline)
        except Exception:
            logger.exception("LangSmithSpanExporter failed to send what it held at shutdown")
        self._transport.close()
        stats = self.stats()
        if stats["runs_refused"] or stats["runs_dropped"]:
            logger.warning(
                "LangSmithSpanExporter shut down having lost runs: %d refused by LangSmith, %d dropped; totals: %s",
                stats["runs_refused"],
                stats["runs_dropped"],
                stats,
            )

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send the waiting spans whose wait is over and the retry queue, within the timeout.

        True when nothing is left to send. Spans still waiting for a parent that may yet end stay
        waiting: sending them now would split their trace."""
        if self._shutdown.is_set():
            return False
        deadline = time.monotonic() + timeout_millis / 1000
        try:
            sent = self._delivery.send(self._assembler.expire(now=time.monotonic()), deadline=deadline)
            return self._delivery.flush(deadline) and sent
        except Exception:
            logger.exception("LangSmithSpanExporter failed to flush")
            return False

    def stats(self) -> dict[str, Any]:
        """Counts since construction: spans in, runs out and where the others went."""
        return {
            "spans_received": self._counts["spans_received"],
            "conversion_errors": self._convert.errors,
            **self._delivery.stats(),
            "waiting": self._assembler.waiting,
            "waiting_bytes": self._assembler.waiting_bytes,
            "released_as_root": dict(self._assembler.released_as_root),
        }

    def _count(self, name: str, amount: int = 1) -> None:
        with self._counts_lock:
            self._counts[name] += amount

    # -- the thread that releases spans whose parent did not arrive in time --------------------

    def _wake_reaper(self, *, start: bool = True) -> None:
        with self._reaper_wake:
            if start and (self._reaper is None or not self._reaper.is_alive()) and not self._shutdown.is_set():
                self._reaper = threading.Thread(target=self._reap, name="otel-langsmith-parent-wait", daemon=True)
                self._reaper.start()
            self._reaper_wake.notify_all()

    def _reap(self) -> None:
        while not self._shutdown.is_set():
            with self._reaper_wake:
                if self._shutdown.is_set():
                    return
                # Read under the condition: an export that adds a waiting span notifies under it
                # too, so its wake-up cannot fall between this read and the wait.
                deadline = self._assembler.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                self._reaper_wake.wait(timeout)
            if self._shutdown.is_set():
                return
            try:
                self._delivery.send(self._assembler.expire(now=time.monotonic()))
            except Exception:
                logger.exception("LangSmithSpanExporter failed to send spans whose parent never arrived")

    def _after_fork(self) -> None:
        # The parent process still owns what it was holding; the child starts empty.
        self._transport.reset_after_fork()
        self._delivery.reset_after_fork(self.settings.max_queue_bytes)
        self._assembler = self._new_assembler()
        self._reaper = None
        self._reaper_wake = threading.Condition()
