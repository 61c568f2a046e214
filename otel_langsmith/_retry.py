"""When to send a batch again, and after how long: one immutable value."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

#: Answers that say "not now" rather than "never": the batch is kept and sent again.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, the server's ``Retry-After`` honoured when it asks for longer.

    A batch whose answer is retryable (a status in ``retry_on``, a connection error, a timeout) is
    kept, in memory or in the spool, and sent again after :meth:`delay`; it is given up on only by a
    bound (``max_queue_bytes``, ``spool_max_bytes``) or at shutdown. The delay never drops below the
    backoff, so ``Retry-After: 0`` (or a date in the past) is no reason to send again at once.

    Example::

        from otel_langsmith import LangSmithSpanExporter, RetryPolicy

        exporter = LangSmithSpanExporter(retry_policy=RetryPolicy(initial_backoff=0.5, max_backoff=10))

    >>> policy = RetryPolicy(jitter=0)
    >>> [policy.delay(attempt) for attempt in range(7)]
    [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    >>> policy.delay(0, retry_after=0.0), policy.delay(0, retry_after=12.0)
    (1.0, 12.0)
    """

    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    multiplier: float = 2.0
    #: Each wait is multiplied by a random factor in ``[1 - jitter, 1 + jitter]``.
    jitter: float = 0.2
    #: A longer ``Retry-After`` is cut to this many seconds.
    max_retry_after: float = 300.0
    retry_on: frozenset[int] = field(default=RETRYABLE_STATUSES)

    def __post_init__(self) -> None:
        for name in ("initial_backoff", "max_backoff", "max_retry_after"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"RetryPolicy.{name} must be a positive number, not {value!r}")
        if not (isinstance(self.multiplier, (int, float)) and math.isfinite(self.multiplier) and self.multiplier >= 1):
            raise ValueError(f"RetryPolicy.multiplier must be >= 1, not {self.multiplier!r}")
        if not (isinstance(self.jitter, (int, float)) and 0 <= self.jitter < 1):
            raise ValueError(f"RetryPolicy.jitter must be in [0, 1), not {self.jitter!r}")

    def retryable(self, status: int | None) -> bool:
        """Whether an answer is worth sending again (None: no answer at all)."""
        return status is None or status in self.retry_on

    def backoff(self, attempt: int) -> float:
        """The wait after the failure numbered ``attempt`` (0 for the first), jitter included."""
        # The exponent is capped: past it the wait is max_backoff anyway, and a float overflows.
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** min(attempt, 64))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else base

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt: the backoff, or ``Retry-After`` when longer."""
        wait = self.backoff(attempt)
        if retry_after is not None and math.isfinite(retry_after):
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait
