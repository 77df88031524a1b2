"""The consumer's reading of an event's instant is what `Timestamp.ToDatetime` gives (an
invalid one refused alike), which it used before. Struct values: sdk/tests/test_structs.py."""

from __future__ import annotations

from datetime import UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.common.v1 import event_pb2
from mailwright_segment.facts import event_fact
from mailwright_segment.values import to_micros


@given(
    st.integers(-62_135_596_800, 253_402_300_799),
    st.integers(0, 999_999_999),
)
def test_event_instants_are_what_to_datetime_gives(seconds: int, nanos: int) -> None:
    event = event_pb2.Event(type=event_pb2.EVENT_TYPE_TRACK, event="Viewed", message_id="m")
    event.timestamp.seconds, event.timestamp.nanos = seconds, nanos
    fact = event_fact(event, 0)
    assert fact is not None
    if seconds or nanos:
        assert fact.at == to_micros(event.timestamp.ToDatetime(tzinfo=UTC))


def test_an_invalid_event_time_is_refused_as_before() -> None:
    event = event_pb2.Event(type=event_pb2.EVENT_TYPE_TRACK, event="Viewed", message_id="m")
    event.timestamp.seconds = 253_402_300_800  # after 9999-12-31
    with pytest.raises(ValueError, match="Timestamp is not valid"):
        event_fact(event, 0)
