"""Log lines for problems that repeat: the first said at once, the rest summed up now and then.

An outage under load fails a batch every few milliseconds and a misconfigured endpoint refuses
every run; a line each would bury the application's own log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: Seconds between two lines about the same problem.
INTERVAL = 30.0


class Throttled:
    """One kind of problem: ``report`` logs it the first time, then at most once per interval,
    with the number of occurrences (and of runs) since the last line. Thread-safe.

    >>> import logging
    >>> problem = Throttled(logging.getLogger("demo"), logging.ERROR, clock=lambda: 0.0)
    >>> problem.report(3, "lost %d run(s)", 3)  # logged
    >>> problem.report(2, "lost %d run(s)", 2)  # counted, logged with the next line after the interval
    >>> problem.pending
    2
    """

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        *,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._level = level
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._logged_at: float | None = None
        #: Runs reported since the last line, not yet said.
        self.pending = 0
        self._occurrences = 0

    def report(self, runs: int, message: str, *args: object) -> None:
        now = self._clock()
        with self._lock:
            if self._logged_at is not None and now - self._logged_at < self._interval:
                self.pending += runs
                self._occurrences += 1
                return
            quiet, occurrences = self.pending, self._occurrences
            self._logged_at, self.pending, self._occurrences = now, 0, 0
        if occurrences and quiet:
            message += " (and %d more time(s), %d run(s), since the last report)"
            args = (*args, occurrences, quiet)
        elif occurrences:  # a problem that costs no run by itself (a spool file, say)
            message += " (and %d more time(s) since the last report)"
            args = (*args, occurrences)
        self._logger.log(self._level, message, *args)

    def reset(self) -> None:
        """Forget what was said: after a fork, the child's log is its own."""
        self._lock = threading.Lock()
        self._logged_at, self.pending, self._occurrences = None, 0, 0
