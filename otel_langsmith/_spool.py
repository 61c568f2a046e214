"""Batches kept on disk (``spool_dir``), so that a process killed during an outage loses nothing.

The next process, or any process sharing the directory, sends them. Spool files hold prompts and
answers: the directory is created 0700 and each file 0600, and a directory that another user owns
or can write to is refused (a file planted there would be sent with this process's key).

Files are written to a temporary name and renamed into place, so a reader never sees half a file.
A process takes a file by renaming it to a name carrying its host name and pid (a rename succeeds
for one process only), then deletes it once delivered or renames it back. A file taken by a process
of this host that has died is given back; one taken on another host (replicas sharing a volume),
whose processes cannot be asked, once its claim is older than any attempt lasts. A file that cannot
be read is moved to ``corrupt/`` and logged.

File layout: one JSON header line ``{"v": 1, "runs": [[operation, run_id, trace_id, [[field,
length], ...]], ...], "sha256": ...}``, then the run payloads back to back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import stat
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import orjson

from ._throttle import Throttled
from ._wire import EncodedRun

logger = logging.getLogger(__name__)

Batch = Sequence[EncodedRun]
_SUFFIX = ".batch"
_VERSION = 1


class SpoolRefused(OSError):
    """The directory cannot be trusted with this process's runs."""


def encode_file(batch: Batch) -> bytes:
    payloads = b"".join(payload for run in batch for _, payload in run.parts)
    header = {
        "v": _VERSION,
        "runs": [
            [run.operation, run.run_id, run.trace_id, [[name, len(payload)] for name, payload in run.parts]]
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
    try:
        return _runs(header["runs"], payloads)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed header: {exc!r}") from None


def _runs(entries: list[list[object]], payloads: bytes) -> list[EncodedRun]:
    runs = []
    position = 0
    for operation, run_id, trace_id, fields in entries:
        if operation not in ("post", "patch") or not isinstance(run_id, str) or not isinstance(fields, list):
            raise ValueError(f"not a run: {operation!r} {run_id!r}")
        parts = []
        for name, length in fields:
            if not isinstance(name, str) or not isinstance(length, int) or length < 0:
                raise ValueError(f"not a part: {name!r} {length!r}")
            parts.append((name, payloads[position : position + length]))
            position += length
        runs.append(EncodedRun.of(operation, run_id, str(trace_id), tuple(parts)))
    if position != len(payloads):
        raise ValueError("payload lengths do not add up")
    return runs


def _make_private(directory: Path) -> None:
    """Make the directory and the parents it lacks, each 0700 whatever the umask: a parent that
    others could write to would let them swap the spool for a directory of their own."""
    missing = []
    for path in (directory, *directory.parents):
        if path.exists():
            break
        missing.append(path)
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made by another process meanwhile: checked below like any existing one
        os.chmod(path, 0o700)


# Host names may hold dots and dashes; the claim's name is split on both.
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
# A claim from another host older than this was abandoned: an attempt lasts a request's timeout.
_STALE_CLAIM = 600.0
# Seconds the files of a spool that refused to give them up (read-only) are left alone.
_REST_AFTER_REFUSAL = 30.0
# Seconds between two counts of the directory's bytes while the batches written since fit.
_RECOUNT = 1.0
# The claims this process holds. A claim in this process's name that is not here was left by an
# earlier process with the same pid on this host (a container's PID 1, restarted after a kill).
_CLAIMS: set[Path] = set()


def _owner() -> str:
    """Who takes a file: this host and process."""
    return f"{_HOST}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):  # gone, or a pid no process can have
        return False
    except PermissionError:
        return True
    return True


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _regular(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _older(entry: os.DirEntry[str], seconds: float) -> bool:
    try:
        return time.time() - entry.stat(follow_symlinks=False).st_mtime > seconds
    except OSError:
        return False


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (never a symlink's target, never a FIFO,
    which would block); ``OSError`` otherwise."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


class Spool:
    """A directory of undelivered batches, shared safely by several processes of one user."""

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int) -> None:
        self.directory = Path(directory)
        self._max_bytes = max_bytes
        self._checked = False
        self._refusals = Throttled(logger, logging.ERROR)
        # A directory of junk must not log a line a file.
        self._unreadable = Throttled(logger, logging.ERROR)
        self._recovered = Throttled(logger, logging.INFO)
        # The batches seen at the last listing and not taken yet, oldest first: a listing per file
        # taken would make draining thousands of files quadratic.
        self._known: deque[Path] = deque()
        # Until then, the files cannot be taken (see take): not counted, so the sender does not spin.
        self._resting_until = 0.0
        self._writing = threading.Lock()
        # The bytes the directory held at its last count, plus what this process wrote since.
        self._counted_bytes = 0
        self._counted_until = 0.0
        #: Files set aside as unreadable.
        self.corrupt_files = 0

    def check_trusted(self) -> None:
        """Create the directory (0700), or check that the one there is this user's alone;
        ``SpoolRefused`` otherwise. Checked once."""
        if self._checked:
            return
        try:
            _make_private(self.directory)
            found = os.stat(self.directory)
        except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
            raise SpoolRefused(f"cannot use the spool directory {self.directory!r}: {exc}") from None
        if not stat.S_ISDIR(found.st_mode):
            raise SpoolRefused(f"spool_dir {self.directory} is not a directory")
        if found.st_uid != os.geteuid():
            raise SpoolRefused(
                f"spool_dir {self.directory} belongs to another user (uid {found.st_uid}): refused, "
                "since files planted there would be sent with this process's API key"
            )
        if found.st_mode & 0o022:
            raise SpoolRefused(
                f"spool_dir {self.directory} can be written by other users (mode {stat.filemode(found.st_mode)}): "
                f"refused; make it private with: chmod 700 {self.directory}"
            )
        if found.st_mode & 0o077:
            try:
                os.chmod(self.directory, 0o700)  # readable by others: the runs hold prompts and answers
            except OSError as exc:
                raise SpoolRefused(
                    f"spool_dir {self.directory} is readable by other users and cannot be made private: {exc}"
                ) from None
        self._checked = True

    def check(self) -> None:
        """Raise ``OSError`` unless batches can be written here (``SpoolRefused``: not safely)."""
        self.check_trusted()
        probe = self.directory / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()

    def _entries(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.directory) as found:
                return list(found)
        except OSError:  # gone, or no longer a directory: nothing waits here
            return []

    def _files(self) -> list[Path]:
        """The batches waiting, oldest first."""
        return [Path(entry.path) for entry in self._batches()]

    def _batches(self) -> list[os.DirEntry[str]]:
        """The batches waiting, oldest first: regular files only. Anything else named like one (a
        symlink, which could lead outside the directory or nowhere; a FIFO, which would block a
        read; a directory) is set aside, never followed or opened."""
        found = []
        for entry in self._entries():
            if not entry.name.endswith(_SUFFIX):
                continue
            if _regular(entry):
                found.append(entry)
            else:
                self.set_aside(Path(entry.path), ValueError("not a regular file"))
        found.sort(key=_name)  # names sort by time (compared as text: paths compare slowly)
        return found

    def write(self, batch: Batch) -> int:
        """Store a batch durably; returns the runs dropped (oldest first) to make room for it.

        Raises ``OSError`` when the disk refuses (``SpoolRefused`` for an untrusted directory)."""
        self.check_trusted()
        data = encode_file(batch)
        # One write at a time: two threads making room at once would each count the other out.
        with self._writing:
            dropped = self._make_room(len(data))
            # Names sort by time, so the oldest batches are sent (and evicted) first.
            name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{_SUFFIX}"
            temporary = self.directory / f".{name}.tmp"
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self.directory / name)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        return dropped

    def reset_after_fork(self) -> None:
        """A lock a parent's thread held at the fork would never be released in the child."""
        self._writing = threading.Lock()
        for throttle in (self._refusals, self._unreadable, self._recovered):
            throttle.reset()

    def _make_room(self, incoming: int) -> int:
        """Evict the oldest batches until ``incoming`` bytes fit; the runs evicted. The directory is
        counted at most once per :data:`_RECOUNT` seconds while the batches written since fit:
        counting it stats every file, and doing it for every write made a long outage quadratic.
        (Other processes' writes since the last count may then take the spool over its bound.)"""
        now = time.monotonic()
        if now < self._counted_until and self._counted_bytes + incoming <= self._max_bytes:
            self._counted_bytes += incoming
            return 0
        batches = self._batches()
        sizes = {}
        for entry in batches:
            try:
                sizes[entry.name] = entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
        total = sum(sizes.values())
        dropped = 0
        for entry in batches:
            if total + incoming <= self._max_bytes:
                break
            if entry.name not in sizes:
                continue
            path = Path(entry.path)
            runs = self._count_runs(path)
            try:
                path.unlink()
            except OSError:
                continue  # another process took it, or it cannot go: the next one may
            total -= sizes[entry.name]
            dropped += runs
        self._counted_bytes, self._counted_until = total + incoming, now + _RECOUNT
        return dropped

    @staticmethod
    def _count_runs(path: Path) -> int:
        try:
            with _open_regular(path) as handle:
                header = orjson.loads(handle.readline())
            return len(header["runs"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def pending(self) -> int:
        """Files waiting, and files this process has taken but not settled yet."""
        if self._known:
            return len(self._known)
        if time.monotonic() < self._resting_until:
            return 0
        mine = f".{_owner()}.taken"
        count = 0
        for entry in self._entries():
            if entry.name.endswith((_SUFFIX, mine)):
                count += 1
            elif entry.name.endswith(".taken") and self._abandoned(entry):
                count += 1  # a killed process's claim: taking recovers it
        return count

    def take(self) -> tuple[Path, list[EncodedRun]] | None:
        """The oldest batch, taken for this process; None when the spool is empty."""
        self.check_trusted()
        if not self._known:
            if time.monotonic() < self._resting_until:
                return None
            self._recover_abandoned()
            self._known = deque(self._files())
        while self._known:
            path = self._known.popleft()
            claimed = path.with_name(f"{path.name}.{_owner()}.taken")
            _CLAIMS.add(claimed)  # before the rename: this process's other spools leave it alone
            try:
                os.rename(path, claimed)
            except FileNotFoundError:
                _CLAIMS.discard(claimed)
                continue  # another process was faster
            except OSError as exc:  # a read-only directory, say: the runs in memory go on
                _CLAIMS.discard(claimed)
                self._known.clear()
                self._resting_until = time.monotonic() + _REST_AFTER_REFUSAL
                self._refusals.report(1, "Cannot take LangSmith spool files from %s (%s)", self.directory, exc)
                return None
            try:
                os.utime(claimed, follow_symlinks=False)  # the claim's age, for other hosts
                with _open_regular(claimed) as handle:
                    return claimed, decode_file(handle.read())
            except (OSError, ValueError) as exc:
                self.set_aside(claimed, exc)
        return None

    def done(self, claimed: Path) -> None:
        _CLAIMS.discard(claimed)
        claimed.unlink(missing_ok=True)

    def give_back(self, claimed: Path) -> None:
        _CLAIMS.discard(claimed)
        original = claimed.with_name(claimed.name.rsplit(".", 2)[0])
        try:
            os.rename(claimed, original)
        except FileNotFoundError:
            return
        self._known.appendleft(original)  # the oldest: sent first again

    def set_aside(self, path: Path, problem: Exception) -> None:
        _CLAIMS.discard(path)
        corrupt = self.directory / "corrupt"
        try:
            corrupt.mkdir(mode=0o700, exist_ok=True)
            if not stat.S_ISDIR(corrupt.lstat().st_mode):
                raise NotADirectoryError(corrupt)  # a symlink would lead the file outside
            os.replace(path, corrupt / path.name)
        except OSError:
            path.unlink(missing_ok=True)  # never left claimed: it would be taken again and again
        self.corrupt_files += 1
        self._unreadable.report(
            0, "LangSmith spool file %s is unreadable (%s); moved to %s", path.name, problem, corrupt
        )

    def _recover_abandoned(self) -> None:
        """Claims of processes that are gone go back to the spool; files a writer killed mid-write
        left half written go away (a write takes milliseconds: one this old was abandoned)."""
        entries = self._entries()
        for entry in entries:
            if entry.name.endswith(".taken") and self._abandoned(entry):
                self._recovered.report(0, "Recovering spool file %s from a process that is gone", entry.name)
                self.give_back(Path(entry.path))
            elif entry.name.startswith(".") and entry.name.endswith(f"{_SUFFIX}.tmp") and _older(entry, _STALE_CLAIM):
                Path(entry.path).unlink(missing_ok=True)

    @staticmethod
    def _abandoned(entry: os.DirEntry[str]) -> bool:
        host, _, pid = entry.name.rsplit(".", 2)[1].rpartition("-")
        if host in ("", _HOST):  # no host: a claim named by an earlier release
            if not (pid.isascii() and pid.isdigit()):
                return False
            return Path(entry.path) not in _CLAIMS if int(pid) == os.getpid() else not _pid_alive(int(pid))
        return _older(entry, _STALE_CLAIM)
