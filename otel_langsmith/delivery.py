"""Runs -> requests: encode each run once, cut batches by the server's limits, send them.

This is where the policy for a refused or failed request lives (today: log it and report the
failure; retries, splitting and spooling belong here too).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

from . import wire
from .transport import Transport

logger = logging.getLogger(__name__)

MULTIPART_PATH = "/runs/multipart"


class Delivery:
    """Thread-safe. ``send`` returns True when every run was accepted."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._boundary = wire.new_boundary()
        self._headers = {"Content-Type": wire.content_type(self._boundary)}
        self._lock = threading.Lock()
        #: Runs accepted, runs in refused or failed requests, requests sent.
        self.counts: Counter[str] = Counter()

    def send(self, runs: Sequence[dict[str, Any]]) -> bool:
        if not runs:
            return True
        info = self._transport.info()
        segments = [wire.encode_run(run, self._boundary) for run in runs]
        delivered = True
        for batch in wire.batches(segments, max_operations=info.size_limit, max_bytes=info.size_limit_bytes):
            body = wire.encode_body(batch, self._boundary)
            response = self._transport.post(MULTIPART_PATH, body, self._headers)
            with self._lock:
                self.counts["requests"] += 1
                if response.ok:
                    self.counts["runs_exported"] += len(batch)
                else:
                    self.counts["runs_failed"] += len(batch)
            if not response.ok:
                delivered = False
                status = f"HTTP {response.status}" if response.status is not None else "no response"
                logger.error(
                    "LangSmith did not accept %d run(s) at %s%s: %s: %s",
                    len(batch),
                    self._transport.endpoint,
                    MULTIPART_PATH,
                    status,
                    response.message or "(empty body)",
                )
        return delivered
