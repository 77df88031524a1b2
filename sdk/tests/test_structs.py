"""`mailwright.structs` reads a Struct as `json_format.MessageToDict` does: the same keys,
kinds and values, in the same order, and the same refusal of a non-finite number."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from mailwright.structs import plain_value, struct_to_dict, struct_values

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


def _with_ints(value: Any) -> Any:
    """MessageToDict's reading with whole numbers below 2**53 as ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_with_ints(item) for item in value]
    if isinstance(value, dict):
        return {key: _with_ints(item) for key, item in value.items()}
    return value


@given(st.dictionaries(st.text(max_size=8), _VALUES, max_size=6))
def test_struct_to_dict_reads_whole_numbers_as_ints(values: dict[str, Any]) -> None:
    struct = struct_pb2.Struct()
    struct.update(values)
    found = struct_to_dict(struct)
    expected = _with_ints(json_format.MessageToDict(struct))
    assert found == expected
    assert repr(found) == repr(expected)  # ints where whole, floats otherwise, same order


@pytest.mark.parametrize(
    ("number", "read"),
    [(3.0, 3), (-(2.0**53) + 1, -(2**53) + 1), (2.0**53, 2.0**53), (0.5, 0.5)],
)
def test_struct_to_dict_keeps_ints_where_a_double_is_exact(number: float, read: Any) -> None:
    struct = struct_pb2.Struct()
    struct.update({"n": number})
    assert repr(struct_to_dict(struct)["n"]) == repr(read)


@pytest.mark.parametrize("number", [math.inf, -math.inf])
def test_struct_to_dict_keeps_a_non_finite_number(number: float) -> None:
    struct = struct_pb2.Struct()
    struct.update({"n": [number]})
    assert struct_to_dict(struct) == {"n": [number]}
