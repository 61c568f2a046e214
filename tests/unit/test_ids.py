import uuid
from datetime import datetime, timezone

import pytest

from otel_langsmith import _ids as ids


def test_root_run_id_is_the_trace_id_bytes_as_a_uuid():
    trace_id = 0x0AF7651916CD43DD8448EB211C80319C
    assert ids.root_run_id(trace_id) == str(uuid.UUID(bytes=trace_id.to_bytes(16, "big")))


def test_span_run_id_is_eight_zero_bytes_then_the_span_id():
    span_id = 0x00F067AA0BA902B7
    expected = uuid.UUID(bytes=bytes(8) + span_id.to_bytes(8, "big"))
    assert ids.span_run_id(span_id) == str(expected)
    # LangSmith's own helper gives 00000000-0000-0000-0102-030405060708 for 0x0102030405060708.
    assert ids.span_run_id(0x0102030405060708) == "00000000-0000-0000-0102-030405060708"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 22, 3, 25, 57, 685039, tzinfo=timezone.utc),
        datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(2000, 1, 1, 0, 0, 0, 0, tzinfo=timezone.utc),
    ],
)
def test_times_match_the_sdk_formats(moment):
    us = int(moment.timestamp()) * 1_000_000 + moment.microsecond
    assert ids.segment_time(us) == moment.strftime("%Y%m%dT%H%M%S%fZ")
    assert ids.iso_time(us) == moment.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    assert ids.parse_segment(ids.segment(us, ids.span_run_id(7)))[0] == us


def test_nanoseconds_are_truncated_to_microseconds():
    assert ids.ns_to_us(1_700_000_000_123_456_789) == 1_700_000_000_123_456


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "20261122T032557685Z00000000-0000-0000-0102-030405060708",  # three fractional digits
        "20261122T032557685039Z0000",  # truncated id
        "2026-11-22T03:25:57.685039Z00000000-0000-0000-0102-030405060708",
        "20261122T032557685039Z00000000-0000-0000-0102-030405060708.",
    ],
)
def test_malformed_dotted_orders_are_refused(bad):
    with pytest.raises(ValueError):
        ids.parse_dotted_order(bad)


def test_dotted_order_segments_parse_root_first():
    root = ids.segment(1_000_000, ids.root_run_id(1))
    child = ids.segment(2_000_000, ids.span_run_id(2))
    assert ids.parse_dotted_order(f"{root}.{child}") == [
        (1_000_000, ids.root_run_id(1)),
        (2_000_000, ids.span_run_id(2)),
    ]
