"""The consumer's readings of protobuf values match the library's, which it used before:
`struct_values` reads a Struct as `json_format.MessageToDict` does (the same keys, kinds
and values, the same refusal of a non-finite number), and an event's instant is what
`Timestamp.ToDatetime` gives (an invalid one refused alike)."""

from __future__ import annotations

import math
from datetime import UTC
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from mailwright.common.v1 import event_pb2
from mailwright_segment.facts import event_fact, struct_values
from mailwright_segment.values import to_micros

_SCALARS = (
    st.none()
    | st.booleans()
    | st.text(max_size=8)
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), _VALUES, max_size=6))
def test_struct_values_equal_message_to_dict(values: dict[str, Any]) -> None:
    struct = struct_pb2.Struct()
    struct.update(values)
    found = struct_values(struct)
    expected = json_format.MessageToDict(struct)
    assert found == expected
    assert repr(found) == repr(expected)  # floats stay floats, key order is the same


def test_a_value_with_no_kind_reads_as_none() -> None:
    struct = struct_pb2.Struct()
    struct.fields["empty"].Clear()
    assert struct_values(struct) == {"empty": None} == json_format.MessageToDict(struct)


@pytest.mark.parametrize("number", [math.inf, -math.inf, math.nan])
def test_a_non_finite_number_is_refused_like_message_to_dict(number: float) -> None:
    struct = struct_pb2.Struct()
    struct.update({"n": {"deep": [number]}})
    with pytest.raises(ValueError, match="Fail to serialize"):
        json_format.MessageToDict(struct)
    with pytest.raises(ValueError, match="cannot be"):
        struct_values(struct)


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
