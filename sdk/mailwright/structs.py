"""`google.protobuf.Struct` values as plain Python, as `json_format.MessageToDict` reads
them — numbers as floats, null (or a value with no kind set) as None, a non-finite
number refused with ValueError — without its generic descriptor walk, which costs more
than everything else a consumer does with an event's properties or a profile's traits.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2

__all__ = ["plain_value", "struct_values"]


def struct_values(struct: struct_pb2.Struct) -> dict[str, Any]:
    """The Struct as a dict of plain values, in its own key order."""
    return {key: plain_value(value) for key, value in struct.fields.items()}


def plain_value(value: struct_pb2.Value) -> Any:
    """One Struct value as plain Python."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise ValueError(f"a Struct number cannot be {number} in JSON")
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_values(value.struct_value)
    if kind == "list_value":
        return [plain_value(item) for item in value.list_value.values]
    return None  # null_value, or no kind set
