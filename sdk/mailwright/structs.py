"""`google.protobuf.Struct` values as plain Python, without `json_format`'s generic
descriptor walk, which costs more than everything else a consumer does with an event's
properties or a profile's traits. Two readings:

- `struct_values`: as `json_format.MessageToDict` reads a Struct — numbers as floats,
  null (or a value with no kind set) as None, a non-finite number refused with
  ValueError (what the segment and delivery services compare and store);
- `struct_to_dict`: whole numbers below 2**53 as ints (`3`, not `3.0`, in a template or a
  stored trait), other numbers, non-finite ones included, as floats (what the profile and
  render services read).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf import struct_pb2

__all__ = ["plain_value", "python_value", "struct_to_dict", "struct_values"]

_INTEGRAL = 2**53


def _reader(number: Callable[[float], Any]) -> Callable[[struct_pb2.Value], Any]:
    """A reader of one Struct value, taking its numbers with `number`."""

    def read(value: struct_pb2.Value) -> Any:
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            return value.string_value
        if kind == "number_value":
            return number(value.number_value)
        if kind == "bool_value":
            return value.bool_value
        if kind == "struct_value":
            return {key: read(item) for key, item in value.struct_value.fields.items()}
        if kind == "list_value":
            return [read(item) for item in value.list_value.values]
        return None  # null_value, or no kind set

    return read


def _finite(number: float) -> float:
    if not math.isfinite(number):
        raise ValueError(f"a Struct number cannot be {number} in JSON")
    return number


def _int_if_whole(number: float) -> float | int:
    return int(number) if number.is_integer() and -_INTEGRAL < number < _INTEGRAL else number


plain_value = _reader(_finite)
"""One Struct value as `struct_values` reads it."""
python_value = _reader(_int_if_whole)
"""One Struct value as `struct_to_dict` reads it."""


def struct_values(struct: struct_pb2.Struct) -> dict[str, Any]:
    """The Struct as a dict of plain values, in its own key order (as MessageToDict)."""
    return {key: plain_value(value) for key, value in struct.fields.items()}


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """The Struct as a dict of plain values, whole numbers as ints (see the module)."""
    return {key: python_value(value) for key, value in struct.fields.items()}
