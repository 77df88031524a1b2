"""Campaign and journey files (YAML) read into their protobuf messages.

The file is the message in protobuf's JSON form, with what people write by hand made
easier: durations as `90s`, `15m`, `1h`, `7d`; enum values by their short name
(`category: marketing`, `kind: winner`, `reentry: never`); and an `id` at the top.

    id: cart-abandonment
    display_name: Cart abandonment
    trigger: {event: {event: Checkout Started, where: "total > 20"}}
    steps:
      - {id: wait-1h, wait: {duration: 1h}, next: check}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from mailwright.errors import InvalidArgument
from mailwright.runtime.settings import parse_duration

M = TypeVar("M", bound=Message)
MAX_FILE_BYTES = 1024 * 1024


def load(path: Path, message_type: type[M]) -> tuple[str, M]:
    """(the id in the file, the message); InvalidArgument naming the problem otherwise."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InvalidArgument.field("file", f"cannot read {path}: {error.strerror}") from error
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidArgument.field("file", f"{path} is larger than 1 MiB")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise InvalidArgument.field("file", f"{path} is not valid YAML: {error}") from error
    return parse(data, message_type)


def parse(data: object, message_type: type[M]) -> tuple[str, M]:
    if not isinstance(data, dict):
        raise InvalidArgument.field("file", "must be a mapping of fields")
    values = dict(data)
    ident = str(values.pop("id", "") or "")
    message = message_type()
    try:
        json_format.ParseDict(_prepare(values, message.DESCRIPTOR, ""), message)
    except json_format.ParseError as error:
        raise InvalidArgument.field("file", str(error)) from error
    return ident, message


def _prepare(value: Any, descriptor: Any, path: str) -> Any:
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for key, item in value.items():
        field = descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(key)
        if field is None:
            result[key] = item  # ParseDict names the unknown field
            continue
        where = f"{path}.{key}" if path else key
        repeated = getattr(field, "is_repeated", None)
        if repeated is None:  # protobuf before 7
            repeated = getattr(field, "label", 0) == FieldDescriptor.LABEL_REPEATED
        items = item if repeated and isinstance(item, list) else None
        if items is not None:
            result[key] = [
                _field(field, element, f"{where}[{i}]") for i, element in enumerate(items)
            ]
        else:
            result[key] = _field(field, item, where)
    return result


def _field(field: FieldDescriptor, value: Any, where: str) -> Any:
    message_type = field.message_type
    enum_type = field.enum_type
    if field.type == FieldDescriptor.TYPE_MESSAGE and message_type is not None:
        full_name = message_type.full_name
        if full_name == "google.protobuf.Duration":
            return _duration(value, where)
        if full_name == "google.protobuf.Timestamp" and hasattr(value, "isoformat"):
            text: str = value.isoformat()
            return text if "+" in text or text.endswith("Z") else text + "Z"
        if full_name.startswith("google.protobuf."):
            return value
        return _prepare(value, message_type, where)
    if enum_type is not None and isinstance(value, str):
        names = [v.name for v in enum_type.values]
        if value in names:
            return value
        wanted = "_" + value.upper().replace("-", "_").replace(" ", "_")
        for name in names:
            if name.endswith(wanted):
                return name
        short = [n.split("_", 2)[-1].lower() for n in names if not n.endswith("UNSPECIFIED")]
        raise InvalidArgument.field(where, f"{value!r} is not one of {', '.join(short)}")
    return value


def _duration(value: Any, where: str) -> str:
    try:
        parsed = parse_duration(value)
    except ValueError as error:
        raise InvalidArgument.field(where, str(error)) from error
    if not hasattr(parsed, "total_seconds"):
        raise InvalidArgument.field(where, "must be a duration such as 90s, 15m, 1h or 7d")
    return f"{parsed.total_seconds():.3f}s"
