"""Batches that could not be delivered: kept in memory, or on disk across restarts.

:class:`RetryQueue` holds them in memory, bounded by bytes: when full, the oldest batch is
dropped, counted and logged. :class:`Spool` keeps them in a directory
(``OTEL_EXPORTER_LANGSMITH_SPOOL_DIR``), so that a process killed while LangSmith is unreachable
loses nothing: the next process (or any process sharing the directory) sends them.

Spool files are written to a temporary name and renamed into place, so a reader never sees half a
file. A process takes a file by renaming it to a name carrying its pid (a rename succeeds for one
process only), then deletes it once delivered or renames it back. A file taken by a process that
has died is given back. A file that cannot be read is moved to ``corrupt/`` and logged.

File layout: one JSON header line ``{"v": 1, "runs": [[operation, run_id, trace_id, [[field,
length], ...]], ...], "sha256": ...}``, then the run payloads back to back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import orjson

from .wire import EncodedRun

logger = logging.getLogger(__name__)

Batch = Sequence[EncodedRun]
_SUFFIX = ".batch"
_VERSION = 1


# Per-object overhead of a kept run (the EncodedRun, its tuples, one bytes object per part), so that
# the byte bound is a bound on memory and not only on payload.
_RUN_OVERHEAD = 200
_PART_OVERHEAD = 100


def batch_size(batch: Batch) -> int:
    return sum(run.size + _RUN_OVERHEAD + _PART_OVERHEAD * len(run.parts) for run in batch)


def compact(batch: Batch) -> list[EncodedRun]:
    """Copies whose payloads occupy only their length.

    orjson returns bytes whose allocation keeps its growth buffer (a 2.5 KB document can hold
    32 KB); that is harmless for a request sent at once, but not for batches kept for minutes.
    """
    return [
        run._replace(parts=tuple((f, bytes(memoryview(p))) for f, p in run.parts))  # same sizes
        for run in batch
    ]


class RetryQueue:
    """In-memory batches waiting to be sent again, oldest first. Thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._batches: deque[tuple[Batch, int]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._batches)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def runs(self) -> int:
        with self._lock:
            return sum(len(batch) for batch, _ in self._batches)

    def put(self, batch: Batch, *, front: bool = False) -> list[Batch]:
        """Queue a batch; returns the batches dropped to make room (oldest first)."""
        batch = compact(batch)
        size = batch_size(batch)
        dropped: list[Batch] = []
        with self._lock:
            if front:
                self._batches.appendleft((batch, size))
            else:
                self._batches.append((batch, size))
            self._bytes += size
            while self._bytes > self._max_bytes and self._batches:
                old, old_size = self._batches.popleft()
                self._bytes -= old_size
                dropped.append(old)
        return dropped

    def peek(self) -> Batch | None:
        """The oldest batch, left in the queue (and counted) while it is being retried."""
        with self._lock:
            return self._batches[0][0] if self._batches else None

    def remove(self, batch: Batch) -> None:
        with self._lock:
            for index, (queued, size) in enumerate(self._batches):
                if queued is batch:
                    del self._batches[index]
                    self._bytes -= size
                    return

    def take_all(self) -> list[Batch]:
        with self._lock:
            batches = [batch for batch, _ in self._batches]
            self._batches.clear()
            self._bytes = 0
            return batches


def encode_file(batch: Batch) -> bytes:
    payloads = b"".join(payload for run in batch for _, payload in run.parts)
    header = {
        "v": _VERSION,
        "runs": [
            [run.operation, run.run_id, run.trace_id, [[field, len(payload)] for field, payload in run.parts]]
            for run in batch
        ],
        "sha256": hashlib.sha256(payloads).hexdigest(),
    }
    return orjson.dumps(header) + b"\n" + payloads


def decode_file(data: bytes) -> list[EncodedRun]:
    """The batch in a spool file; ``ValueError`` for anything not written by :func:`encode_file`."""
    newline = data.find(b"\n")
    if newline < 0:
        raise ValueError("no header line")
    try:
        header = orjson.loads(data[:newline])
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"unreadable header: {exc}") from None
    if not isinstance(header, dict) or header.get("v") != _VERSION:
        raise ValueError("unknown spool format")
    payloads = data[newline + 1 :]
    if hashlib.sha256(payloads).hexdigest() != header.get("sha256"):
        raise ValueError("checksum mismatch")
    runs = []
    position = 0
    for operation, run_id, trace_id, fields in header["runs"]:
        parts = []
        for field, length in fields:
            parts.append((str(field), payloads[position : position + length]))
            position += length
        runs.append(EncodedRun.of(str(operation), str(run_id), str(trace_id), tuple(parts)))
    if position != len(payloads):
        raise ValueError("payload lengths do not add up")
    return runs


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """A directory of undelivered batches, shared safely by several processes."""

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int) -> None:
        self.directory = Path(directory)
        self._max_bytes = max_bytes
        #: Runs lost because the spool was full, and files set aside as corrupt.
        self.dropped_runs = 0
        self.corrupt_files = 0

    def _ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.endswith(_SUFFIX))
        except FileNotFoundError:
            return []

    def write(self, batch: Batch) -> None:
        """Store a batch durably; raises ``OSError`` when the disk refuses."""
        self._ensure()
        data = encode_file(batch)
        self._make_room(len(data))
        # Names sort by time, so the oldest batches are sent (and evicted) first.
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{_SUFFIX}"
        temporary = self.directory / f".{name}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.directory / name)

    def _make_room(self, incoming: int) -> None:
        files = self._files()
        sizes = {}
        for path in files:
            try:
                sizes[path] = path.stat().st_size
            except FileNotFoundError:
                continue
        total = sum(sizes.values())
        for path in files:
            if total + incoming <= self._max_bytes:
                break
            if path not in sizes:
                continue
            runs = self._count_runs(path)
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # another process took it
            total -= sizes[path]
            self.dropped_runs += runs
            logger.error("LangSmith spool %s is full: dropped its oldest batch (%d runs)", self.directory, runs)

    @staticmethod
    def _count_runs(path: Path) -> int:
        try:
            with open(path, "rb") as handle:
                header = orjson.loads(handle.readline())
            return len(header["runs"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def pending(self) -> int:
        """Files waiting, and files this process has taken but not settled yet."""
        mine = f".{os.getpid()}.taken"
        try:
            return sum(1 for p in self.directory.iterdir() if p.name.endswith((_SUFFIX, mine)))
        except FileNotFoundError:
            return 0

    def take(self) -> tuple[Path, list[EncodedRun]] | None:
        """The oldest batch, taken for this process; None when the spool is empty."""
        self._recover_abandoned()
        for path in self._files():
            claimed = path.with_name(f"{path.name}.{os.getpid()}.taken")
            try:
                os.rename(path, claimed)
            except FileNotFoundError:
                continue  # another process was faster
            try:
                return claimed, decode_file(claimed.read_bytes())
            except (OSError, ValueError) as exc:
                self._set_aside(claimed, exc)
        return None

    def done(self, claimed: Path) -> None:
        try:
            claimed.unlink()
        except FileNotFoundError:
            pass

    def give_back(self, claimed: Path) -> None:
        original = claimed.name.rsplit(".", 2)[0]
        try:
            os.rename(claimed, claimed.with_name(original))
        except FileNotFoundError:
            pass

    def _set_aside(self, path: Path, problem: Exception) -> None:
        corrupt = self.directory / "corrupt"
        corrupt.mkdir(exist_ok=True)
        try:
            os.replace(path, corrupt / path.name)
        except OSError:
            pass
        self.corrupt_files += 1
        logger.error("LangSmith spool file %s is unreadable (%s); moved to %s", path.name, problem, corrupt)

    def _recover_abandoned(self) -> None:
        try:
            taken = [p for p in self.directory.iterdir() if p.name.endswith(".taken")]
        except FileNotFoundError:
            return
        for path in taken:
            try:
                pid = int(path.name.rsplit(".", 2)[1])
            except ValueError:
                continue
            if pid != os.getpid() and not _pid_alive(pid):
                logger.info("Recovering spool file %s from a process that is gone", path.name)
                self.give_back(path)
