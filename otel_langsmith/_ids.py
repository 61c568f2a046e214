"""OpenTelemetry ids to LangSmith run ids, and the times and segments of ``dotted_order``.

Times are carried as integer microseconds since the Unix epoch (UTC): LangSmith's resolution, and
exact, unlike floats. Everything here is pure and cheap, since it runs for every span.
"""

from __future__ import annotations

import calendar
import re
import time
import uuid
from functools import lru_cache

_NS_PER_US = 1_000
_US_PER_S = 1_000_000


# Ids are formatted through ``int.to_bytes(...).hex()``, faster than a ``:016x`` format spec: each
# span formats three ids.
def _hex(value: int, size: int) -> str:
    """``value`` as ``2 * size`` lower-case hex digits: of a value no OTel id can be (an id
    generator's negative or oversized one), its low bytes, so that the id stays one LangSmith takes.
    """
    bits = 8 * size
    if not 0 <= value < 1 << bits:
        value &= (1 << bits) - 1
    return value.to_bytes(size, "big").hex()


def format_uuid(value: int) -> str:
    """Format a 128-bit integer as a canonical lower-case UUID string.

    Faster than ``str(uuid.UUID(int=value))``, which matters once per span.

    >>> format_uuid(0x0102030405060708)
    '00000000-0000-0000-0102-030405060708'
    """
    h = _hex(value, 16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def root_run_id(otel_trace_id: int) -> str:
    """The run id of a span with no parent at all: the 16 trace-id bytes read as a UUID."""
    return format_uuid(otel_trace_id)


def span_hex(otel_span_id: int) -> str:
    """A span id as OTel writes it: 16 hex digits."""
    return _hex(otel_span_id, 8)


# Every span of a trace names its trace: formatted once per trace, not once per span.
_trace_hexes: dict[int, str] = {}
_MAX_TRACE_HEXES = 4096


def trace_hex(otel_trace_id: int) -> str:
    """A trace id as OTel writes it: 32 hex digits.

    >>> trace_hex(0xABC)
    '00000000000000000000000000000abc'
    """
    found = _trace_hexes.get(otel_trace_id)
    if found is None:
        if len(_trace_hexes) >= _MAX_TRACE_HEXES:  # traces end: the ones kept are soon useless
            _trace_hexes.clear()
        found = _trace_hexes[otel_trace_id] = _hex(otel_trace_id, 16)
    return found


def span_run_id(otel_span_id: int) -> str:
    """The run id of every other span: 8 zero bytes then the 8 span-id bytes (LangSmith's own rule).

    >>> span_run_id(0x0102030405060708)
    '00000000-0000-0000-0102-030405060708'
    """
    if 0 <= otel_span_id < 1 << 64:  # always, for a real span id: half the formatting of format_uuid
        h = otel_span_id.to_bytes(8, "big").hex()  # span_hex's work, inline: once per span
        return f"00000000-0000-0000-{h[:4]}-{h[4:]}"
    return format_uuid(otel_span_id)


def span_hex_of_run_id(run_id: str) -> str:
    """The span id in a :func:`span_run_id`, as :func:`span_hex` writes it.

    >>> span_hex_of_run_id(span_run_id(0x0102030405060708))
    '0102030405060708'
    """
    return run_id[19:23] + run_id[24:]


def derived_run_id(trace_id: int, span_id: int, *, root: bool) -> tuple[str, int]:
    """D1's run id of a span, and its integer key: the trace id for a root, else the span id.

    >>> derived_run_id(1, 2, root=False)
    ('00000000-0000-0000-0000-000000000002', 2)
    """
    # A trace id of 0 is invalid (only a hand-made span has one): every such root would be one run.
    return (root_run_id(trace_id), trace_id) if root and trace_id else (span_run_id(span_id), span_id)


def normalize_uuid(value: str) -> str:
    """Canonical form of a UUID given in any form ``uuid.UUID`` accepts; ``ValueError`` otherwise."""
    return str(uuid.UUID(value.strip()))


def ns_to_us(ns: int) -> int:
    return ns // _NS_PER_US


#: The times a run can carry: from the epoch to the last microsecond of year 9999.
MAX_US = 253_402_300_799_999_999


def valid_us(us: int) -> bool:
    """Whether a time fits the formats LangSmith reads (four-digit years, not before 1970)."""
    return 0 <= us <= MAX_US


def start_us(start_ns: int | None) -> int:
    """A span's start in microseconds as it starts: now when it has none, or one no run can carry
    (the SDK takes any number, NaN and infinities included)."""
    if start_ns:
        us = ns_to_us(start_ns)
        if valid_us(us):
            return us
    return ns_to_us(time.time_ns())


@lru_cache(maxsize=1024)
def _second(seconds: int) -> tuple[str, str]:
    """The whole-second parts of :func:`segment_time` and :func:`iso_time`.

    Runs of a trace start and end within a few seconds of each other, so formatting a second once
    and keeping it spares ``gmtime`` and a seven-field format for nearly every time (three per run).
    """
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}T{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}",
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.",
    )


def _split(us: int) -> tuple[tuple[str, str], int]:
    """The formatted whole second of a time (clamped to the years a run can carry) and its micros."""
    if not 0 <= us <= MAX_US:
        us = MAX_US if us > MAX_US else 0  # before 1970, or not a number (a float time of NaN)
    seconds, micros = divmod(us, _US_PER_S)
    return _second(seconds), micros


def segment_time(us: int) -> str:
    """``dotted_order`` time: UTC ``%Y%m%dT%H%M%S%fZ``, always six fractional digits.

    >>> segment_time(1_700_000_000_123_456)
    '20231114T221320123456Z'
    """
    second, micros = _split(us)
    # printf, not an f-string with a format spec, which costs more (three times per run).
    return "%s%06dZ" % (second[0], micros)  # noqa: UP031


def iso_time(us: int) -> str:
    """ISO-8601 UTC with six fractional digits, as the LangSmith SDK sends run times.

    >>> iso_time(1_700_000_000_000_000)
    '2023-11-14T22:13:20.000000+00:00'
    """
    second, micros = _split(us)
    return "%s%06d+00:00" % (second[1], micros)  # noqa: UP031


def segment(us: int, run_id: str) -> str:
    """One ``dotted_order`` segment: the run's start time, then its id."""
    return segment_time(us) + run_id


_SEGMENT = re.compile(r"(\d{8}T\d{6})(\d{6})Z([0-9a-fA-F-]{36})")


def parse_segment(text: str) -> tuple[int, str]:
    """Split one segment into (start time in microseconds, run id); ``ValueError`` if malformed.

    >>> parse_segment("20231114T221320123456Z00000000-0000-0000-0102-030405060708")
    (1700000000123456, '00000000-0000-0000-0102-030405060708')
    """
    match = _SEGMENT.fullmatch(text)
    if match is None:
        raise ValueError(f"malformed dotted_order segment {text!r}")
    stamp, micros, run_id = match.groups()
    seconds = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%S"))
    return seconds * _US_PER_S + int(micros), normalize_uuid(run_id)


def parse_dotted_order(text: str) -> list[tuple[int, str]]:
    """All segments of a ``dotted_order``, root first; ``ValueError`` if any is malformed."""
    if not text:
        raise ValueError("empty dotted_order")
    return [parse_segment(part) for part in text.split(".")]
