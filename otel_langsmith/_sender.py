"""One batch of runs to LangSmith, and what the answer means.

:func:`decide` is the whole status policy, a pure function of the answer and the attempt: a new
status code is one line there. :class:`Sender` carries it out for one batch: it splits a batch the
server finds too large (413), bisects one it refuses (400, 422) so that only the runs at fault are
lost, shrinks a run too large for any request, and falls back to ``/runs/batch`` on servers without
``/runs/multipart``. It never waits between attempts: a batch worth sending again goes back to the
backlog (:mod:`otel_langsmith._backlog`), which waits as :class:`~otel_langsmith.RetryPolicy` says.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import _wire as wire
from ._retry import RetryPolicy
from ._shrink import shrink_run
from ._stats import Counters
from ._throttle import Throttled
from ._transport import Response, ServerInfo, Transport, describe

logger = logging.getLogger(__name__)

MULTIPART_PATH = "/runs/multipart"
BATCH_PATH = "/runs/batch"
# A run the server still finds too large is halved this many times before it is refused.
_SHRINK_ROUNDS = 6

Batch = Sequence[wire.EncodedRun]


class Action(enum.Enum):
    DELIVERED = "delivered"  # stored (409: stored before)
    RETRY = "retry"  # not now: keep the batch and send it again after ``wait``
    SPLIT = "split"  # 413: halve the batch; a single run is shrunk
    BISECT = "bisect"  # 400/422: one bad run sinks a whole request; halve to find it
    FALLBACK = "fallback"  # 404 on /runs/multipart from LangSmith: an older server, use /runs/batch
    AUTH = "auth"  # 401/403: the credentials; keep the runs for a corrected key
    FOREIGN = "not_langsmith"  # the endpoint is not a LangSmith API (an HTML page, 405, 501, a redirect)
    REFUSE = "refuse"  # LangSmith refuses these runs for good


@dataclass(frozen=True)
class Verdict:
    action: Action
    #: For RETRY: seconds before the next attempt.
    wait: float = 0.0


def decide(response: Response, *, attempt: int, policy: RetryPolicy, multipart: bool = True) -> Verdict:
    """What the answer to a batch means. ``attempt`` counts the failures before this one.

    >>> decide(Response(202), attempt=0, policy=RetryPolicy()).action
    <Action.DELIVERED: 'delivered'>
    >>> decide(Response(503, retry_after=0.0), attempt=2, policy=RetryPolicy(jitter=0))
    Verdict(action=<Action.RETRY: 'retry'>, wait=4.0)
    """
    status = response.status
    if policy.retryable(status):
        # Even an HTML page: a proxy's 503 during an outage is still an outage.
        return Verdict(Action.RETRY, policy.delay(attempt, response.retry_after))
    assert status is not None
    if response.foreign:
        return Verdict(Action.FOREIGN)
    if 200 <= status < 300 or status == 409:  # 409: the run is already stored
        return Verdict(Action.DELIVERED)
    if 300 <= status < 400 or status in (405, 501):
        return Verdict(Action.FOREIGN)
    if status in (401, 403):
        return Verdict(Action.AUTH)
    if status == 404:
        return Verdict(Action.FALLBACK if multipart else Action.FOREIGN)
    if status == 413:
        return Verdict(Action.SPLIT)
    if status in (400, 422):
        return Verdict(Action.BISECT)
    return Verdict(Action.REFUSE)


@dataclass
class Outcome:
    """What became of a batch: the runs to send again (and when), and the runs to keep aside."""

    retry: list[wire.EncodedRun] = field(default_factory=list)
    wait: float = 0.0
    #: Runs that cannot be sent with these settings (``reason``): spooled for a corrected
    #: configuration, or dropped.
    kept: list[wire.EncodedRun] = field(default_factory=list)
    reason: str = ""

    def add(self, other: Outcome) -> None:
        self.retry += other.retry
        self.wait = max(self.wait, other.wait)
        self.kept += other.kept
        self.reason = self.reason or other.reason

    @property
    def failed(self) -> bool:
        """No answer worth the name: the endpoint is down, or not what it should be."""
        return bool(self.retry or self.kept)


class Sender:
    """Sends one batch at a time (the backlog holds the only lock that calls it)."""

    def __init__(
        self,
        transport: Transport,
        *,
        compression: str,
        policy: RetryPolicy,
        counters: Counters,
        problems: Sequence[str] = (),
    ) -> None:
        self._transport = transport
        self._compression = compression
        self._policy = policy
        self._counts = counters
        #: Settings that make sending impossible: nothing is sent at all.
        self._problems = list(problems)
        self._boundary = wire.new_boundary()
        self._multipart = True
        # Set when a server refused every run of a bisected batch: later refusals are not bisected.
        self._refusing_everything = False
        self._said: set[str] = set()
        self._refusals = Throttled(logger, logging.ERROR)
        self._foreign = Throttled(logger, logging.ERROR)
        self._truncations = Throttled(logger, logging.WARNING)

    def server_info(self, *, deadline: float) -> ServerInfo | None:
        """The server's limits; None while it does not answer (or cannot be asked)."""
        if self._problems:
            return ServerInfo()
        return self._transport.info(deadline=deadline)

    def send(self, batch: Batch, info: ServerInfo, *, deadline: float, attempt: int = 0) -> Outcome:
        """Deliver a batch, or say which of its runs to send again and which to keep aside."""
        if self._problems:
            return Outcome(kept=list(batch), reason="configuration")
        if attempt:
            self._counts.add("runs_retried", len(batch))
        fitted = [self._fit(run, info.size_limit_bytes) for run in batch]
        return self._send(fitted, info, deadline, attempt, _Budget(len(fitted)))

    def _send(self, batch: Batch, info: ServerInfo, deadline: float, attempt: int, budget: _Budget) -> Outcome:
        response = self._post(batch, info, deadline)
        budget.spent += 1
        verdict = decide(response, attempt=attempt, policy=self._policy, multipart=self._multipart)
        action = verdict.action
        if action is Action.DELIVERED:
            self._counts.add("runs_exported", len(batch))
            budget.accepted += 1
            self._refusing_everything = False
            return Outcome()
        if action is Action.RETRY:
            if attempt == 0:
                logger.info("LangSmith answered %s; keeping %d run(s) to send again", describe(response), len(batch))
            return Outcome(retry=list(batch), wait=verdict.wait)
        if action is Action.FALLBACK:
            logger.warning(
                "%s%s answered 404: using %s instead", self._transport.shown_endpoint, MULTIPART_PATH, BATCH_PATH
            )
            self._multipart = False
            return self._send(batch, info, deadline, attempt, budget)
        if action is Action.SPLIT:
            if len(batch) > 1:
                return self._halves(batch, info, deadline, attempt, budget)
            return self._too_large(batch[0], info, deadline, attempt, response)
        if action is Action.BISECT and len(batch) > 1 and not self._refusing_everything:
            outcome = self._halves(batch, info, deadline, attempt, budget)
            if budget.exhausted():
                self._refusing_everything = True
            return outcome
        if action is Action.AUTH:
            self._say_auth(response)
            return Outcome(kept=list(batch), reason="auth")
        if action is Action.FOREIGN:
            self._foreign.report(
                len(batch),
                "%s does not answer as a LangSmith API (%s): check LANGSMITH_ENDPOINT (LangSmith's cloud: "
                "https://api.smith.langchain.com; self-hosted: https://<host>/api/v1). %d run(s) not delivered",
                self._transport.shown_endpoint,
                describe(response),
                len(batch),
            )
            return Outcome(kept=list(batch), reason="not_langsmith")
        self._refuse(batch, response)
        return Outcome()

    def _halves(self, batch: Batch, info: ServerInfo, deadline: float, attempt: int, budget: _Budget) -> Outcome:
        middle = len(batch) // 2
        outcome = self._send(batch[:middle], info, deadline, attempt, budget)
        if outcome.retry or outcome.kept:
            # The server stopped answering as it did: the other half waits with the first.
            outcome.add(Outcome(retry=list(batch[middle:])) if outcome.retry else Outcome(kept=list(batch[middle:])))
            return outcome
        if budget.exhausted():
            self._refuse(
                batch[middle:], Response(400, "refused with the rest of its batch: LangSmith refused every run")
            )
            return outcome
        outcome.add(self._send(batch[middle:], info, deadline, attempt, budget))
        return outcome

    def _too_large(
        self, run: wire.EncodedRun, info: ServerInfo, deadline: float, attempt: int, response: Response
    ) -> Outcome:
        # The server's limit is lower than it advertised: halve the run until it passes.
        limit = run.multipart_size
        for _ in range(_SHRINK_ROUNDS):
            limit //= 2
            smaller = self._shrink(run, limit)
            response = self._post([smaller], info, deadline)
            if response.status != 413:
                return self._send([smaller], info, deadline, attempt, _Budget(1))
        self._refuse([run], response)
        return Outcome()

    def _fit(self, run: wire.EncodedRun, max_bytes: int) -> wire.EncodedRun:
        return run if run.multipart_size <= max_bytes else self._shrink(run, max_bytes)

    def _shrink(self, run: wire.EncodedRun, max_bytes: int) -> wire.EncodedRun:
        shrunk, originals = shrink_run(_decode(run), max_bytes)
        self._counts.add("runs_truncated")
        self._truncations.report(
            1,
            "Run %s (trace %s) is too large for one request (limit %d bytes): truncated %s",
            run.run_id,
            run.trace_id,
            max_bytes,
            ", ".join(f"{name} from {size} bytes" for name, size in originals.items()) or "nothing",
        )
        return wire.encode_run(shrunk, operation=run.operation)

    def _refuse(self, batch: Batch, response: Response) -> None:
        self._counts.add("runs_refused", len(batch))
        first = batch[0]
        self._refusals.report(
            len(batch),
            "LangSmith refused %d run(s) (run %s, trace %s%s): %s",
            len(batch),
            first.run_id,
            first.trace_id,
            " and others" if len(batch) > 1 else "",
            describe(response),
        )
        for run in batch[1:]:
            logger.debug("LangSmith refused run %s (trace %s)", run.run_id, run.trace_id)

    def _say_auth(self, response: Response) -> None:
        key = f"auth{response.status}"
        if key in self._said:
            return
        self._said.add(key)
        logger.error(
            "LangSmith refused the credentials (%s) at %s. Check LANGSMITH_API_KEY (%s), that LANGSMITH_ENDPOINT "
            "is the region of the key (api.smith.langchain.com, eu.api.smith.langchain.com, ...), and "
            "LANGSMITH_WORKSPACE_ID for an organization-scoped key. Runs are not sent again with this key.",
            describe(response),
            self._transport.shown_endpoint,
            self._transport.masked_key,
        )

    # -- the request ------------------------------------------------------------------------------

    def _post(self, batch: Batch, info: ServerInfo, deadline: float) -> Response:
        path, body, headers = self._request(batch, info)
        self._counts.add("requests")
        return self._transport.post(path, body, headers, deadline=deadline)

    def _request(self, batch: Batch, info: ServerInfo) -> tuple[str, bytes, dict[str, str]]:
        if self._multipart:
            path, body = MULTIPART_PATH, wire.multipart_body(batch, self._boundary)
            headers = {"Content-Type": wire.content_type(self._boundary)}
        else:
            path, body = BATCH_PATH, wire.batch_body(batch)
            headers = {"Content-Type": "application/json"}
        encoding = self._encoding(info)
        if encoding == "none":
            return path, body, headers
        compressed = wire.compress(body, encoding)
        headers["Content-Encoding"] = encoding
        headers["X-Pre-Compressed-Size"] = str(sum(run.size for run in batch))
        headers["X-Post-Compressed-Size"] = str(len(compressed))
        return path, compressed, headers

    def _encoding(self, info: ServerInfo) -> str:
        choice = self._compression
        if choice == "auto":
            return "zstd" if info.zstd_compression_enabled and wire.ZSTD_AVAILABLE else "none"
        if choice == "zstd" and not wire.ZSTD_AVAILABLE:
            return "gzip"
        return choice

    def cut_short(self) -> None:
        """End the request in flight now: shutdown's grace is over."""
        self._transport.cut_short()

    def reset_after_fork(self) -> None:
        self._transport.reset_after_fork()
        for throttle in (self._refusals, self._foreign, self._truncations):
            throttle.reset()


class _Budget:
    """Requests spent bisecting one batch. A server that accepts nothing of it is refusing everything:
    past about two requests per halving level, the rest is refused whole rather than probed run by run."""

    def __init__(self, runs: int) -> None:
        self.limit = 2 * math.ceil(math.log2(max(runs, 2))) + 2
        self.spent = 0
        self.accepted = 0

    def exhausted(self) -> bool:
        return self.accepted == 0 and self.spent >= self.limit


def _decode(run: wire.EncodedRun) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(run.parts[0][1])
    for name, payload in run.parts[1:]:
        decoded[name] = orjson.loads(payload)
    return decoded
