"""Event properties checked against their taxonomy definition, and normalised.

Types, required properties, allowed values, and arrays of objects (an order's products)
item by item. Values are normalised as they are checked: timestamps to UTC ISO 8601,
amounts to exact decimal strings, currencies to ISO 4217, countries to ISO 3166 alpha-2,
emails trimmed and lower-cased, phones to E.164. Properties the definition does not name
pass through untouched. Nothing here knows protobuf: values are plain Python (JSON-like).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from mailwright.errors import FieldViolation
from mailwright.normalize import (
    format_money,
    format_timestamp,
    normalize_country,
    normalize_currency,
    normalize_email,
    normalize_phone,
    parse_money,
    parse_timestamp,
)
from mailwright.taxonomy import PropertySpec, PropertyType

MAX_URL_CHARS = 4096
_ABSOLUTE_URL = re.compile(r"^https?://[^\s/?#@]+(?:[/?#]\S*)?$", re.IGNORECASE)


class _Same:
    """The value was acceptable as it was (or was reported): nothing to replace."""


SAME = _Same()


def check_properties(
    values: dict[str, Any],
    specs: Sequence[PropertySpec],
    where: str,
    problems: list[FieldViolation],
    region: str | None = None,
) -> dict[str, Any] | None:
    """Check `values` against `specs`; report to `problems`; return the normalised values
    when anything changed, else None. `region` reads phone numbers written without `+`."""
    changed: dict[str, Any] | None = None
    for spec in specs:
        value = values.get(spec.name)
        field = f"{where}.{spec.name}"
        if value is None:
            if spec.required:
                problems.append(FieldViolation(field, "is required by the event's definition"))
            continue
        normalised = _check_value(value, spec, field, problems, region)
        if normalised is not SAME:
            if changed is None:
                changed = dict(values)
            changed[spec.name] = normalised
    return changed


def _check_value(
    value: Any, spec: PropertySpec, field: str, problems: list[FieldViolation], region: str | None
) -> Any:
    checker = _CHECKERS[spec.type]
    before = len(problems)
    try:
        result = checker(value, spec, field, problems, region)
    except ValueError as error:
        problems.append(FieldViolation(field, str(error)))
        return SAME
    if spec.enum_values and len(problems) == before:
        shown = value if result is SAME else result
        if _enum_text(shown) not in spec.enum_values:
            allowed = ", ".join(spec.enum_values[:20])
            more = " …" if len(spec.enum_values) > 20 else ""
            problems.append(FieldViolation(field, f"must be one of {allowed}{more}"))
            return SAME
    return result


def _enum_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _kind(value: Any) -> str:
    """What a JSON value is, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _string(value: Any, spec: PropertySpec, field: str, *_: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_kind(value)}")
    return SAME


def _number(value: Any, spec: PropertySpec, field: str, *_: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {_kind(value)}")
    return SAME


def _integer(value: Any, spec: PropertySpec, field: str, *_: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be an integer, not {_kind(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"must be an integer, not {value}")
        return int(value)
    return SAME


def _boolean(value: Any, spec: PropertySpec, field: str, *_: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_kind(value)}")
    return SAME


def _timestamp(value: Any, spec: PropertySpec, field: str, *_: Any) -> Any:
    text = format_timestamp(parse_timestamp(value))
    return SAME if text == value else text


def _money(value: Any, spec: PropertySpec, field: str, *_: Any) -> Any:
    text = format_money(parse_money(value))
    return SAME if text == value else text


def _text_normaliser(normalise: Callable[[str], str | None], what: str) -> Callable[..., Any]:
    def check(value: Any, spec: PropertySpec, field: str, *_: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"must be {what} as a string, not {_kind(value)}")
        result = normalise(value)
        if result is None:
            raise ValueError(f"{value[:80]!r} is not {what}")
        return SAME if result == value else result

    return check


def _phone(
    value: Any, spec: PropertySpec, field: str, problems: list[FieldViolation], region: str | None
) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"must be a phone number as a string, not {_kind(value)}")
    text = str(value)
    result = normalize_phone(text, region)
    if result is None:
        hint = "" if text.strip().startswith("+") else " (write it with + and the country code)"
        raise ValueError(f"{text[:40]!r} is not a phone number{hint}")
    return SAME if result == value else result


def _url(value: Any, spec: PropertySpec, field: str, *_: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be a URL as a string, not {_kind(value)}")
    text = value.strip()
    if len(text) > MAX_URL_CHARS:
        raise ValueError(f"longer than {MAX_URL_CHARS} characters")
    if not _ABSOLUTE_URL.match(text):
        raise ValueError(f"{text[:80]!r} is not an absolute http(s) URL")
    return SAME if text == value else text


def _object(
    value: Any, spec: PropertySpec, field: str, problems: list[FieldViolation], region: str | None
) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"must be an object, not {_kind(value)}")
    if not spec.items:
        return SAME
    changed = check_properties(value, spec.items, field, problems, region)
    return SAME if changed is None else changed


def _array(
    value: Any, spec: PropertySpec, field: str, problems: list[FieldViolation], region: str | None
) -> Any:
    if not isinstance(value, list):
        raise ValueError(f"must be an array, not {_kind(value)}")
    if not spec.items:
        return SAME
    out: list[Any] | None = None
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            problems.append(FieldViolation(where, f"must be an object, not {_kind(item)}"))
            continue
        changed = check_properties(item, spec.items, where, problems, region)
        if changed is not None:
            if out is None:
                out = list(value)
            out[index] = changed
    return SAME if out is None else out


_CHECKERS: dict[PropertyType, Callable[..., Any]] = {
    PropertyType.STRING: _string,
    PropertyType.NUMBER: _number,
    PropertyType.INTEGER: _integer,
    PropertyType.BOOLEAN: _boolean,
    PropertyType.TIMESTAMP: _timestamp,
    PropertyType.MONEY: _money,
    PropertyType.CURRENCY: _text_normaliser(normalize_currency, "an ISO 4217 currency code"),
    PropertyType.COUNTRY: _text_normaliser(normalize_country, "a country code or name"),
    PropertyType.EMAIL: _text_normaliser(
        lambda text: normalize_email(text, provider_rules=False), "an email address"
    ),
    PropertyType.PHONE: _phone,
    PropertyType.URL: _url,
    PropertyType.OBJECT: _object,
    PropertyType.ARRAY: _array,
}
