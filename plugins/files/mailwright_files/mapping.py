"""The declared column mapping of file imports, and rows turned into events by it.

A mapping (YAML) declares each stream: which files, their format, and which column is
the user id, email, anonymous id, timestamp, event name, traits or properties — each
a column (`{column: total, type: decimal}`, or just `total`) or a constant (`{value:
"Order Completed"}`), with a type cast:

```yaml
streams:
  orders:
    files: exports/orders-*.jsonl
    kind: track                      # track or identify
    event: {value: Order Completed}
    user_id: customer.id             # dotted paths reach into JSON objects and structs
    email: customer.email
    timestamp: {column: created_at, type: timestamp}
    message_id: id                   # optional: a stable record id
    properties:
      order_id: id
      revenue: {column: total, type: decimal}
      currency: {value: EUR}
```

Casts: `string`, `integer`, `float`, `decimal` (kept as a decimal string, as money is),
`boolean` (true/false, yes/no, 1/0, t/f), `timestamp` (ISO 8601, epoch seconds or
milliseconds, or `format` for `strptime`; naive times are UTC), `json`. A row that does
not fit — a value that does not cast, a required column missing, no identity, no
timestamp — is a `RowError` naming the column and what is wrong, never the value.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mailwright.common.v1.common_pb2 import Identity
from mailwright.common.v1.event_pb2 import EVENT_TYPE_IDENTIFY, EVENT_TYPE_TRACK, Event

SOURCE = "files"
STREAM_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
Cast = Literal["string", "integer", "float", "decimal", "boolean", "timestamp", "json"]
TRUE = frozenset({"true", "yes", "1", "t", "y"})
FALSE = frozenset({"false", "no", "0", "f", "n"})


class RowError(ValueError):
    """A row that cannot become an event; the message names the column, not the value."""


class Column(BaseModel):
    """Where a value comes from: a column (dotted path) or a constant, and its type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str | None = Field(default=None, min_length=1, max_length=200)
    value: Any = None
    type: Cast = "string"
    format: str | None = Field(default=None, max_length=100)
    required: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"column": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> Column:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of column and value")
        if self.format is not None and self.type != "timestamp":
            raise ValueError("format is for timestamps")
        return self

    @property
    def name(self) -> str:
        return self.column or "(constant)"

    def read(self, row: Mapping[str, Any]) -> Any:
        raw = self.value if self.column is None else lookup(row, self.column)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.required:
                raise RowError(f"column {self.name!r}: missing")
            return None
        try:
            return cast(raw, self.type, self.format)
        except (ValueError, TypeError, InvalidOperation, OverflowError):
            raise RowError(f"column {self.name!r}: not a {self.type}") from None


class StreamMapping(BaseModel):
    """One stream: its files and how their rows become events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[str] = Field(min_length=1)
    format: Literal["csv", "jsonl", "parquet"] | None = None
    kind: Literal["identify", "track"] = "track"
    event: Column | None = None
    user_id: Column | None = None
    anonymous_id: Column | None = None
    email: Column | None = None
    timestamp: Column
    message_id: Column | None = None
    traits: dict[str, Column] = Field(default_factory=dict)
    properties: dict[str, Column] = Field(default_factory=dict)
    csv_delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"

    @field_validator("files", mode="before")
    @classmethod
    def _files(cls, value: Any) -> Any:
        patterns = [value] if isinstance(value, str) else value
        for pattern in patterns if isinstance(patterns, list) else []:
            if (
                not isinstance(pattern, str)
                or pattern.startswith("/")
                or ".." in pattern.split("/")
            ):
                raise ValueError("file patterns are relative to the directory, without '..'")
        return patterns

    @field_validator("timestamp")
    @classmethod
    def _a_time(cls, value: Column) -> Column:
        if value.type == "string":  # the default: a timestamp column holds a time
            return value.model_copy(update={"type": "timestamp"})
        if value.type != "timestamp":
            raise ValueError("the timestamp column's type is timestamp")
        return value

    @model_validator(mode="after")
    def _complete(self) -> StreamMapping:
        if self.kind == "track" and self.event is None:
            raise ValueError("event: required for a track stream")
        if self.user_id is None and self.anonymous_id is None and self.email is None:
            raise ValueError("user_id, anonymous_id or email: give at least one")
        return self


class FilesMapping(BaseModel):
    """Every stream the files source can import."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    streams: dict[str, StreamMapping] = Field(min_length=1)

    @field_validator("streams")
    @classmethod
    def _names(cls, value: dict[str, StreamMapping]) -> dict[str, StreamMapping]:
        for name in value:
            if not STREAM_NAME.match(name):
                raise ValueError(f"stream {name!r}: lower-case letters, digits, - and _")
        return value


def lookup(row: Mapping[str, Any], path: str) -> Any:
    if path in row:
        return row[path]
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def cast(raw: Any, kind: Cast, form: str | None = None) -> Any:
    text = raw.strip() if isinstance(raw, str) else raw
    if kind == "string":
        return str(text)
    if kind == "integer":
        if isinstance(text, float) and not text.is_integer():
            raise ValueError
        if isinstance(text, bool):
            raise TypeError
        return int(text)
    if kind == "float":
        number = float(text)
        if not math.isfinite(number):
            raise ValueError
        return number
    if kind == "decimal":
        amount = Decimal(str(text))
        if not amount.is_finite():
            raise ValueError
        return str(amount)
    if kind == "boolean":
        if isinstance(text, bool):
            return text
        lowered = str(text).lower()
        if lowered in TRUE or lowered in FALSE:
            return lowered in TRUE
        raise ValueError
    if kind == "timestamp":
        return timestamp(text, form)
    if isinstance(text, str):
        return json.loads(text)
    return text


def timestamp(value: Any, form: str | None) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) > 10**11 else value
        parsed = datetime.fromtimestamp(seconds, UTC)
    elif form is not None:
        parsed = datetime.strptime(str(value), form)
    else:
        text = str(value)
        if text.isdigit():
            return timestamp(int(text), None)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def row_key(row: Mapping[str, Any]) -> str:
    # json's own encoder walks the row; `default` only meets datetimes, decimals, bytes.
    return json.dumps(row, sort_keys=True, default=_encode, separators=(",", ":"))


def _encode(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else str(value)


def to_event(stream: str, spec: StreamMapping, row: Mapping[str, Any], identity: str) -> Event:
    """`row` as the stream's event. `identity` distinguishes rows without a message id
    column (a hash of the file name, the row's content and its repetition)."""
    user_id = spec.user_id.read(row) if spec.user_id else None
    anonymous_id = spec.anonymous_id.read(row) if spec.anonymous_id else None
    email = spec.email.read(row) if spec.email else None
    if email is not None:
        email = str(email).strip().lower()
        if "@" not in email or len(email) > 320:
            raise RowError(f"column {spec.email.name if spec.email else ''!r}: not an email")
    if not (user_id or anonymous_id or email):
        raise RowError("no user_id, anonymous_id or email")
    when = spec.timestamp.read(row)
    if not isinstance(when, datetime):
        raise RowError(f"column {spec.timestamp.name!r}: missing or not a timestamp")
    record = spec.message_id.read(row) if spec.message_id else None
    message_id = f"{SOURCE}:{stream}:{record}" if record is not None else identity
    values = {
        name: column.read(row)
        for name, column in (
            spec.traits.items() if spec.kind == "identify" else spec.properties.items()
        )
    }
    if spec.kind == "identify" and email:
        values.setdefault("email", email)
    struct = struct_pb2.Struct()
    struct.update({k: jsonable(v) for k, v in values.items() if v is not None})
    moment = when.timestamp()
    stamp = Timestamp(seconds=math.floor(moment), nanos=when.microsecond * 1000)
    event = Event(
        message_id=message_id[:200],
        user_id=str(user_id) if user_id is not None else "",
        anonymous_id=str(anonymous_id) if anonymous_id is not None else "",
        timestamp=stamp,
        source=SOURCE,
    )
    if email:
        event.identities.append(Identity(type="email", value=email))
        if not event.user_id and not event.anonymous_id:
            digest = hashlib.sha256(email.encode()).hexdigest()[:40]
            event.anonymous_id = f"{SOURCE}:email:{digest}"
    if spec.kind == "identify":
        event.type = EVENT_TYPE_IDENTIFY
        event.traits.CopyFrom(struct)
    else:
        event.type = EVENT_TYPE_TRACK
        name = spec.event.read(row) if spec.event else None
        if not name:
            raise RowError(f"column {spec.event.name if spec.event else ''!r}: missing event name")
        event.event = str(name)[:200]
        event.properties.CopyFrom(struct)
    return event
