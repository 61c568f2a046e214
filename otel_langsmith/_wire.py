"""Runs -> the bytes of LangSmith's multipart ingestion requests. Pure: no I/O.

Layout (docs/architecture.md, "The wire"): per run a ``post.{id}`` part with the run minus
its out-of-band fields, then one part per out-of-band field that is set, each with its own
``Content-Disposition``, ``Content-Type`` and ``Content-Length``; CRLF line ends; the body closes with
``--{boundary}--``. Each run is serialized once into an :class:`EncodedRun`; batches are cut by
byte size, and bodies for either endpoint assembled, without serializing anything twice.

Writing the layout directly is faster than ``requests_toolbelt.MultipartEncoder``
(``benchmarks/bench_multipart.py`` measures both), so the toolbelt is not a dependency.
"""

from __future__ import annotations

import gzip
import logging
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

try:
    import zstandard
except ImportError:  # pragma: no cover - zstandard is a dependency; gzip stands in without it
    zstandard = None  # type: ignore[assignment]

ZSTD_AVAILABLE = zstandard is not None

logger = logging.getLogger(__name__)

#: Fields LangSmith takes as parts of their own, in the order the SDK writes them.
OUT_OF_BAND = ("inputs", "outputs", "events", "extra", "error", "serialized")

# Past this depth a value is cut: orjson refuses deeper documents (its limit is 255 levels).
_MAX_DEPTH = 200
TOO_DEEP = "...[nested too deep, cut by otel-langsmith]"
# Past this many values a copy is cut: a value that holds one list many times over (v = [v, v],
# three hundred times) has more paths than any copy could hold, and would be copied for ever.
_MAX_VALUES = 100_000
TOO_LARGE = "...[too large, cut by otel-langsmith]"


def new_boundary() -> str:
    return uuid.uuid4().hex


def content_type(boundary: str) -> str:
    return f"multipart/form-data; boundary={boundary}"


def _text_of(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a hostile __str__, an int str() refuses: say what it was, not what it says
        return f"<unprintable {type(value).__name__}>"


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, Sequence)):
        return list(value)
    return _text_of(value)


def _sanitize(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A copy that orjson accepts: lone surrogates replaced, huge ints as text, deep values cut, and
    what lies past :data:`_MAX_VALUES` values (``budget`` counts them down) cut too."""
    if budget is None:
        budget = [_MAX_VALUES]
    budget[0] -= 1
    if budget[0] < 0:
        return TOO_LARGE
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace").decode("utf-8")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else _text_of(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= _MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return {_sanitize(_text_of(k)): _sanitize(v, depth + 1, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_sanitize(v, depth + 1, budget) for v in value]
    return _sanitize(_text_of(value), depth, budget)


def dumps(value: Any) -> bytes:
    """Compact JSON. Never raises for attribute-like data: what orjson refuses is sanitized first."""
    try:
        return orjson.dumps(value, default=_default)
    except Exception as exc:
        logger.debug("Sanitizing a value orjson refused: %s", exc)
        return orjson.dumps(_sanitize(value), default=_default)


# Part framing bytes beyond the payload and the part name (a 32-character boundary, a Content-Length
# of up to ten digits): used to budget batches by their real size.
_FRAMING = len(b'--\r\nContent-Disposition: form-data; name=""\r\nContent-Type: application/json\r\n')
_FRAMING += len(b"Content-Length: \r\n\r\n\r\n") + 32 + 10


class EncodedRun(NamedTuple):
    """One run operation serialized once: its main part and each out-of-band field, as JSON bytes.

    Bodies for either endpoint are assembled from these without encoding anything again. The sizes
    are worked out once, when the run is made (by :func:`encode_run` or :meth:`of`): batching, the
    retry queue and the request headers all ask for them.
    """

    operation: str
    run_id: str
    trace_id: str
    #: (field, payload); the main part has the field "".
    parts: tuple[tuple[str, bytes], ...]
    #: Payload bytes, without multipart framing (what ``X-Pre-Compressed-Size`` counts).
    size: int
    #: Bytes the run takes in a multipart body (a close upper bound): what batches are cut by.
    multipart_size: int

    @classmethod
    def of(cls, operation: str, run_id: str, trace_id: str, parts: tuple[tuple[str, bytes], ...]) -> EncodedRun:
        """A run from parts already encoded (a spooled batch read back, say), its sizes worked out."""
        size = names = 0
        for field, payload in parts:
            size += len(payload)
            names += len(field)
        multipart_size = _multipart_size(size, names, len(parts), operation, run_id)
        return cls(operation, run_id, trace_id, parts, size, multipart_size)


def _multipart_size(size: int, names: int, count: int, operation: str, run_id: str) -> int:
    # Each part is named "{operation}.{run_id}", then, but for the main part, "." and its field.
    return size + count * (_FRAMING + len(operation) + 1 + len(run_id)) + names + count - 1


def encode_run(run: Mapping[str, Any], *, operation: str = "post") -> EncodedRun:
    """One run as the parts of a multipart request. Raises what orjson raises for what it refuses
    (lone surrogates, huge integers, values nested too deep, objects it does not know): then
    :func:`encode_sanitized`."""
    # orjson is called straight rather than through dumps(), and the sizes are summed as the parts
    # are made: this runs for every run. Each payload is copied to its own length at once: orjson's
    # bytes keep the capacity it reserved (4 KiB at the least, often ten times the length), and a
    # batch of runs each holding that much costs more in fresh memory than the copy does, while
    # orjson's buffer, freed, is reused warm by the next part.
    main = dict(run)
    pop = main.pop
    parts = [("", b"")]
    size = names = 0
    for field in OUT_OF_BAND:
        value = pop(field, None)
        if value is not None:
            payload = bytes(memoryview(orjson.dumps(value, default=_default)))
            parts.append((field, payload))
            size += len(payload)
            names += len(field)
    payload = bytes(memoryview(orjson.dumps(main, default=_default)))
    parts[0] = ("", payload)
    size += len(payload)
    run_id = str(run["id"])
    multipart_size = _multipart_size(size, names, len(parts), operation, run_id)
    # tuple.__new__ directly: the generated __new__ is a Python-level call.
    return tuple.__new__(EncodedRun, (operation, run_id, str(run.get("trace_id")), tuple(parts), size, multipart_size))


def encode_sanitized(run: Mapping[str, Any], *, operation: str = "post") -> EncodedRun:
    """:func:`encode_run` of a copy orjson accepts; ``ValueError`` only if even that fails (a run
    without an id)."""
    try:
        return encode_run({_text_of(key): _sanitize(value) for key, value in run.items()}, operation=operation)
    except Exception as exc:
        raise ValueError(f"run {run.get('id')!r} cannot be encoded: {exc!r}") from None


# What each part's name adds to the run's: nothing for the main part.
_PART_SUFFIXES = {"": b"", **{field: b"." + field.encode() for field in OUT_OF_BAND}}


def multipart_body(runs: Iterable[EncodedRun], boundary: str) -> bytes:
    """A ``/runs/multipart`` body: per run its main part, then its out-of-band parts."""
    # Each part's headers in one printf-style format, the payloads copied only by the final join.
    header = (
        b"--" + boundary.encode().replace(b"%", b"%%") + b'\r\nContent-Disposition: form-data; name="%s%s"\r\n'
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    )
    chunks: list[bytes] = []
    append = chunks.append
    for run in runs:
        prefix = f"{run.operation}.{run.run_id}".encode()
        for field, payload in run.parts:
            suffix = _PART_SUFFIXES.get(field)
            if suffix is None:
                suffix = b"." + field.encode()
            append(header % (prefix, suffix, len(payload)))
            append(payload)
            append(b"\r\n")
    append(b"--" + boundary.encode() + b"--\r\n")
    return b"".join(chunks)


def batch_body(runs: Iterable[EncodedRun]) -> bytes:
    """A ``/runs/batch`` JSON body: the same runs with their fields put back inline.

    The payloads are spliced, not parsed again: each main part is a JSON object, so its closing
    brace gives way to the out-of-band fields.
    """
    groups: dict[str, list[bytes]] = {"post": [], "patch": []}
    for run in runs:
        main = run.parts[0][1]
        extra = b"".join(b',"' + field.encode() + b'":' + payload for field, payload in run.parts[1:])
        if extra and main != b"{}":
            groups.setdefault(run.operation, []).append(main[:-1] + extra + b"}")
        elif extra:
            groups.setdefault(run.operation, []).append(b"{" + extra[1:] + b"}")
        else:
            groups.setdefault(run.operation, []).append(main)
    members = [b'"' + op.encode() + b'":[' + b",".join(items) + b"]" for op, items in groups.items() if items]
    return b"{" + b",".join(members) + b"}"


def batches(runs: Sequence[EncodedRun], *, max_operations: int, max_bytes: int) -> Iterator[list[EncodedRun]]:
    """Cut runs into batches of at most ``max_operations`` and ``max_bytes`` of multipart body.

    A run larger than ``max_bytes`` on its own still forms a batch: shrinking it is the delivery
    layer's job, not the encoder's.
    """
    batch: list[EncodedRun] = []
    size = 0
    for run in runs:
        run_size = run.multipart_size
        if batch and (len(batch) >= max_operations or size + run_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(run)
        size += run_size
    if batch:
        yield batch


#: Level 1, as the LangSmith SDK compresses: on run JSON it compresses about as well as level 3,
#: in less time.
ZSTD_LEVEL = 1


def compress(body: bytes, encoding: str) -> bytes:
    """``body`` as a ``Content-Encoding`` of ``zstd`` or ``gzip``."""
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=6)
    raise ValueError(f"unknown content encoding {encoding!r}")
