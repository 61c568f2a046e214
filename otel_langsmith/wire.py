"""Runs -> the bytes of LangSmith's multipart ingestion requests. Pure: no I/O.

Layout (reference ``langsmith-ingest.md`` 1.4-1.6): per run a ``post.{id}`` part with the run minus
its out-of-band fields, then one part per out-of-band field that is set, each with its own
``Content-Disposition``, ``Content-Type`` and ``Content-Length``; CRLF line ends; the body closes with
``--{boundary}--``. Each run is encoded once into a self-contained segment so that batches can be
cut by byte size without encoding anything twice.

Writing the layout directly is faster than ``requests_toolbelt.MultipartEncoder``
(``benchmarks/bench_multipart.py`` measures both), so the toolbelt is not a dependency.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

logger = logging.getLogger(__name__)

#: Fields LangSmith takes as parts of their own, in the order the SDK writes them.
OUT_OF_BAND = ("inputs", "outputs", "events", "extra", "error", "serialized")
_OUT_OF_BAND = frozenset(OUT_OF_BAND)

# Past this depth a value is sent as its text: orjson refuses deeper documents.
_MAX_DEPTH = 200


def new_boundary() -> str:
    return uuid.uuid4().hex


def content_type(boundary: str) -> str:
    return f"multipart/form-data; boundary={boundary}"


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, Sequence)):
        return list(value)
    return str(value)


def _sanitize(value: Any, depth: int = 0) -> Any:
    """A copy that orjson accepts: lone surrogates replaced, huge ints and deep values as text."""
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace").decode("utf-8")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= _MAX_DEPTH:
        return _sanitize(repr(value)[:10_000])
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return {_sanitize(str(k)): _sanitize(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_sanitize(v, depth + 1) for v in value]
    return _sanitize(str(value))


def dumps(value: Any) -> bytes:
    """Compact JSON. Never raises for attribute-like data: what orjson refuses is sanitized first."""
    try:
        return orjson.dumps(value, default=_default)
    except TypeError as exc:
        logger.debug("Sanitizing a value orjson refused: %s", exc)
        return orjson.dumps(_sanitize(value), default=_default)


def _part(boundary: bytes, name: str, body: bytes) -> bytes:
    return b"".join(
        (
            b"--",
            boundary,
            b'\r\nContent-Disposition: form-data; name="',
            name.encode(),
            b'"\r\nContent-Type: application/json\r\nContent-Length: ',
            str(len(body)).encode(),
            b"\r\n\r\n",
            body,
            b"\r\n",
        )
    )


def encode_run(run: Mapping[str, Any], boundary: str, *, operation: str = "post") -> bytes:
    """Every part of one run operation (``post`` or ``patch``), as one segment of a body."""
    mark = boundary.encode()
    run_id = run["id"]
    main = {key: value for key, value in run.items() if key not in _OUT_OF_BAND}
    parts = [_part(mark, f"{operation}.{run_id}", dumps(main))]
    for field in OUT_OF_BAND:
        value = run.get(field)
        if value is not None:
            parts.append(_part(mark, f"{operation}.{run_id}.{field}", dumps(value)))
    return b"".join(parts)


def encode_body(segments: Sequence[bytes], boundary: str) -> bytes:
    """A whole request body from run segments."""
    return b"".join((*segments, b"--", boundary.encode(), b"--\r\n"))


def batches(segments: Sequence[bytes], *, max_operations: int, max_bytes: int) -> Iterator[list[bytes]]:
    """Cut segments into batches of at most ``max_operations`` and ``max_bytes``.

    A segment larger than ``max_bytes`` on its own still forms a batch: shrinking it is the
    delivery layer's job, not the encoder's.

    >>> [len(b) for b in batches([b"x" * 6] * 5, max_operations=10, max_bytes=13)]
    [2, 2, 1]
    """
    batch: list[bytes] = []
    size = 0
    for segment in segments:
        if batch and (len(batch) >= max_operations or size + len(segment) > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(segment)
        size += len(segment)
    if batch:
        yield batch
