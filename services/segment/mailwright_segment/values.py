"""Values as the segment projection keeps them: normalised, encoded, and placed in time.

Everything that enters the projection (trait values, event properties) is normalised once,
here, and every evaluator — the reference evaluator, the SQL compiler and the incremental
evaluator — sees the normalised value. Normalisation follows what a value can be after a
trip through protobuf's `Struct` (JSON): numbers become exact `Decimal`s (a float by its
shortest repr, as the reference evaluator reads it), datetimes become ISO 8601 strings in
UTC, a NUL character (which PostgreSQL cannot store) becomes U+FFFD, and a non-finite
number, which has no JSON form, is no value at all.

Time inside the projection is an integer: microseconds since the Unix epoch, UTC. A day is
a UTC day, ``micros // MICROS_PER_DAY``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TypeAlias

from mailwright.rules.reference import group_key

Value: TypeAlias = "bool | str | Decimal | list[Value] | dict[str, Value] | None"
"""A normalised value: JSON's kinds, with every number an exact Decimal."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MICROS_PER_DAY = 86_400_000_000
MAX_DEPTH = 20
"""Nesting kept in a value; anything deeper is cut to no value."""


def to_micros(instant: datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware")
    return (instant - EPOCH) // MICROSECOND


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def day_of(micros: int) -> int:
    """The UTC day number of an instant (floor division, also before 1970)."""
    return micros // MICROS_PER_DAY


def micros_of(period: timedelta) -> int:
    return period // MICROSECOND


# ---------------------------------------------------------------------------------------
# Normalisation


def normalize(value: object, depth: int = 0) -> Value:
    """The projection's form of a trait or property value (see the module docstring)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).isoformat()
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, list | tuple):
        return [normalize(item, depth + 1) for item in value]
    if isinstance(value, Mapping):
        return {str(k).replace("\x00", "\ufffd"): normalize(v, depth + 1) for k, v in value.items()}
    return str(value).replace("\x00", "\ufffd")


def normalize_mapping(values: Mapping[str, object]) -> dict[str, Value]:
    """Normalised key/value pairs, pairs without a value (None) left out."""
    out: dict[str, Value] = {}
    for key, raw in values.items():
        value = normalize(raw, 1)
        if value is not None:
            out[str(key).replace("\x00", "\ufffd")] = value
    return out


# ---------------------------------------------------------------------------------------
# Encoding: JSON text in which numbers keep their exact decimal digits


_ENCODER = json.JSONEncoder(ensure_ascii=False)


def dumps(value: Value) -> str:
    """JSON text of a normalised value; Decimals are written digit for digit."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _ENCODER.encode(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return "{" + ",".join(_ENCODER.encode(k) + ":" + dumps(v) for k, v in value.items()) + "}"


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal)


def loads(text: str) -> Value:
    """The value of `dumps` text; every number a Decimal."""
    if text[:1] == '"' and "\\" not in text:
        # A string without escapes (most trait values): its characters as they are.
        return text[1:-1]
    loaded: Value = _DECODER.decode(text)
    return loaded


# ---------------------------------------------------------------------------------------
# Kinds and keys


def kind_of(value: Value) -> str:
    """One letter for the value's kind: s(tring), n(umber), b(oolean), l(ist), o(bject)."""
    if isinstance(value, bool):
        return "b"
    if isinstance(value, str):
        return "s"
    if isinstance(value, Decimal):
        return "n"
    if isinstance(value, list):
        return "l"
    return "o"


def group_text(value: object) -> str | None:
    """The text of a ``per`` correlation key: equal values (by the reference evaluator's
    rules: 5 equals 5.0, "5" does not), equal texts; None for a value that cannot pair."""
    key = group_key(value)
    if key is None:
        return None
    kind, inner = key
    if kind == "bool":
        return "b:1" if inner else "b:0"
    if kind == "string":
        assert isinstance(inner, str)
        return "s:" + inner
    assert isinstance(inner, Decimal)
    return "n:0" if inner == 0 else "n:" + format(inner.normalize(), "f")


def canonical_number(value: Decimal) -> str:
    return "0" if value == 0 else format(value.normalize(), "f")
