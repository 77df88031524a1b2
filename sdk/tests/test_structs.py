"""`mailwright.structs` reads a Struct as `json_format.MessageToDict` does: the same keys,
kinds and values, in the same order, and the same refusal of a non-finite number."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from mailwright.structs import plain_value, struct_values

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


def test_one_value_reads_as_in_its_struct() -> None:
    struct = struct_pb2.Struct()
    struct.update({"o": {"l": [1, {}, [], None, "x", True]}})
    assert plain_value(struct.fields["o"]) == json_format.MessageToDict(struct)["o"]
