"""Encoded runs waiting in memory, oldest first, bounded in bytes."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from ._wire import EncodedRun

# Per-object overhead of a queued run (the EncodedRun, its tuples, one bytes object per part), so that
# the byte bound is a bound on memory and not only on payload.
_RUN_OVERHEAD = 200
_PART_OVERHEAD = 100


def queued_size(run: EncodedRun) -> int:
    return run.size + _RUN_OVERHEAD + _PART_OVERHEAD * len(run.parts)


class RunQueue:
    """Thread-safe. Beyond ``max_bytes`` the oldest runs are dropped (``add`` says how many)."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._runs: deque[EncodedRun] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._runs)

    def add(self, runs: Sequence[EncodedRun], *, front: bool = False) -> int:
        """Queue runs (at the back, or at the front: runs sent again are the oldest); returns how
        many of the oldest were dropped to stay within the bound."""
        dropped = 0
        with self._lock:
            if front:
                self._runs.extendleft(reversed(runs))
            else:
                self._runs.extend(runs)
            self.bytes += sum(map(queued_size, runs))
            while self.bytes > self._max_bytes and len(self._runs) > 1:
                self.bytes -= queued_size(self._runs.popleft())
                dropped += 1
        return dropped

    def take(self, max_runs: int, max_bytes: int) -> list[EncodedRun]:
        """The oldest runs, at most ``max_runs`` and ``max_bytes`` of multipart body (at least one)."""
        batch: list[EncodedRun] = []
        # LangSmith refuses a request that names one operation of a run twice (a span exported
        # twice): the second waits for the next batch.
        named: set[tuple[str, str]] = set()
        size = 0
        with self._lock:
            while self._runs and len(batch) < max_runs:
                run = self._runs[0]
                name = (run.operation, run.run_id)
                if batch and (size + run.multipart_size > max_bytes or name in named):
                    break
                batch.append(self._runs.popleft())
                named.add(name)
                size += run.multipart_size
                self.bytes -= queued_size(run)
        return batch

    def take_all(self) -> list[EncodedRun]:
        with self._lock:
            runs = list(self._runs)
            self._runs.clear()
            self.bytes = 0
        return runs
