"""Template filters: Jinja's safe built-ins, and locale-aware formatting with Babel.

Dates and times are shown in the recipient's timezone and locale (from the render
scope); numbers, percentages and money in the recipient's locale. Money is a `Decimal`
with an ISO 4217 code, never a float. Values that come from JSON are accepted as they
arrive: ISO 8601 strings and epoch seconds for times, numeric strings for numbers, and
`{"amount": "12.50", "currency": "EUR"}` for money. A missing value formats as empty.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from jinja2 import Undefined
from jinja2.filters import FILTERS as JINJA_FILTERS

from mailwright_render.errors import RenderError
from mailwright_render.scope import current_scope

# `format` reaches attributes through format strings; `lipsum`-style generators and
# anything else not listed here are simply absent.
_REMOVED_FILTERS = frozenset({"format"})
FALLBACK_LOCALE = "en"


@functools.lru_cache(maxsize=256)
def parse_locale(identifier: str) -> Locale:
    """A Babel locale for `identifier` (`fr_CA`, `fr-CA`); English if it is unknown."""
    try:
        return Locale.parse(identifier.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse(FALLBACK_LOCALE)


def _locale() -> Locale:
    return parse_locale(current_scope().locale)


def _missing(value: object) -> bool:
    return value is None or isinstance(value, Undefined) or value == ""


def to_datetime(value: object, *, field: str = "value") -> datetime:
    """A timezone-aware datetime from a datetime, date, ISO 8601 string or epoch seconds.

    Naive values are taken as UTC, the platform's internal time.
    """
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        result = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, str):
        try:
            result = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RenderError(f"{field} {value!r} is not an ISO 8601 date or time") from None
    else:
        raise RenderError(f"{field} of type {type(value).__name__} is not a date or time")
    return result if result.tzinfo is not None else result.replace(tzinfo=UTC)


def to_decimal(value: object, *, field: str = "value") -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise RenderError(f"{field} {value!r} is not a number")
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            raise RenderError(f"{field} {value!r} is not a number") from None
    raise RenderError(f"{field} of type {type(value).__name__} is not a number")


def _local(value: object, field: str) -> datetime:
    return to_datetime(value, field=field).astimezone(current_scope().timezone)


def format_date(value: object, format: str = "medium") -> str:
    """`{{ last_purchase_date|date }}`, `|date("long")`, `|date("d MMM yyyy")`."""
    if _missing(value):
        return ""
    if isinstance(value, date) and not isinstance(value, datetime):
        return babel_dates.format_date(value, format=format, locale=_locale())
    if isinstance(value, str) and len(value.strip()) == 10:
        # A bare calendar date has no timezone to convert from.
        return babel_dates.format_date(
            to_datetime(value, field="date").date(), format=format, locale=_locale()
        )
    return babel_dates.format_date(_local(value, "date"), format=format, locale=_locale())


def format_datetime(value: object, format: str = "medium") -> str:
    if _missing(value):
        return ""
    moment = _local(value, "datetime")
    return babel_dates.format_datetime(
        moment, format=format, tzinfo=moment.tzinfo, locale=_locale()
    )


def format_time(value: object, format: str = "short") -> str:
    if _missing(value):
        return ""
    if isinstance(value, time):
        return babel_dates.format_time(value, format=format, locale=_locale())
    moment = _local(value, "time")
    return babel_dates.format_time(moment, format=format, tzinfo=moment.tzinfo, locale=_locale())


def relative_time(value: object, granularity: str = "second", threshold: float = 0.85) -> str:
    """`{{ cart_updated_at|relative_time }}` → "3 hours ago", "in 2 days"."""
    if _missing(value):
        return ""
    delta: timedelta = to_datetime(value, field="relative_time") - current_scope().now
    return babel_dates.format_timedelta(
        delta,
        granularity=granularity,  # type: ignore[arg-type]
        threshold=threshold,
        add_direction=True,
        locale=_locale(),
    )


def format_number(value: object, format: str | None = None, decimals: int | None = None) -> str:
    """`{{ points|number }}` → "12,345"; `|number(decimals=2)` → "12,345.00"."""
    if _missing(value):
        return ""
    number = to_decimal(value, field="number")
    if decimals is not None:
        number = number.quantize(Decimal(1).scaleb(-int(decimals)))
        pattern = format or ("#,##0." + "0" * int(decimals) if decimals > 0 else "#,##0")
        return babel_numbers.format_decimal(
            number, format=pattern, locale=_locale(), decimal_quantization=False
        )
    return babel_numbers.format_decimal(number, format=format, locale=_locale())


def format_percent(value: object, format: str | None = None) -> str:
    """`{{ 0.25|percent }}` → "25%" (the value is a fraction)."""
    if _missing(value):
        return ""
    return babel_numbers.format_percent(
        to_decimal(value, field="percent"), format=format, locale=_locale()
    )


def check_currency(code: object) -> str:
    if not isinstance(code, str) or not babel_numbers.is_currency(code.upper()):
        raise RenderError(f"currency {code!r} is not an ISO 4217 code")
    return code.upper()


def format_money(value: object, currency: str | None = None, format: str | None = None) -> str:
    """`{{ order.total|money("EUR") }}`, or `{{ order.total|money }}` for {amount, currency}."""
    if _missing(value):
        return ""
    amount: object = value
    if isinstance(value, Mapping):
        amount = value.get("amount")
        currency = currency or value.get("currency")
        if _missing(amount):
            return ""
    if currency is None:
        raise RenderError("money needs a currency: |money('EUR') or {amount, currency}")
    return babel_numbers.format_currency(
        to_decimal(amount, field="money amount"),
        check_currency(currency),
        format=format,
        locale=_locale(),
    )


def local_time(value: object) -> datetime | str:
    """The value as a datetime in the recipient's timezone (for `.hour`, `.strftime`)."""
    if _missing(value):
        return ""
    return _local(value, "local_time")


def now() -> datetime:
    """The time of this render, in the recipient's timezone."""
    scope = current_scope()
    return scope.now.astimezone(scope.timezone)


LOCALE_FILTERS: dict[str, Callable[..., Any]] = {
    "date": format_date,
    "datetime": format_datetime,
    "time": format_time,
    "relative_time": relative_time,
    "number": format_number,
    "percent": format_percent,
    "money": format_money,
    "currency": format_money,
    "local_time": local_time,
}


def template_filters(extra: Mapping[str, Callable[..., Any]] | None = None) -> dict[str, Any]:
    """Every filter a template may use: Jinja's safe built-ins, ours, and plugins' `extra`."""
    filters: dict[str, Any] = {
        name: func for name, func in JINJA_FILTERS.items() if name not in _REMOVED_FILTERS
    }
    filters.update(LOCALE_FILTERS)
    for name, func in (extra or {}).items():
        if name in _REMOVED_FILTERS or name in filters:
            raise ValueError(f"filter {name!r} cannot be added or replaced")
        filters[name] = func
    return filters


# PHP's date() letters, which Mailchimp's *|DATE:…|* tag uses.
def php_date(pattern: str, moment: datetime, locale: Locale) -> str:
    """Format `moment` with a PHP date() pattern (`d/m/Y`, `F j, Y`), names localised."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(_php_letter(char, moment, locale))
    return "".join(out)


def _php_letter(char: str, moment: datetime, locale: Locale) -> str:
    hour12 = moment.hour % 12 or 12
    simple: dict[str, Callable[[], str]] = {
        "d": lambda: f"{moment.day:02d}",
        "j": lambda: str(moment.day),
        "D": lambda: str(locale.days["format"]["abbreviated"][moment.weekday()]),
        "l": lambda: str(locale.days["format"]["wide"][moment.weekday()]),
        "N": lambda: str(moment.isoweekday()),
        "m": lambda: f"{moment.month:02d}",
        "n": lambda: str(moment.month),
        "M": lambda: str(locale.months["format"]["abbreviated"][moment.month]),
        "F": lambda: str(locale.months["format"]["wide"][moment.month]),
        "y": lambda: f"{moment.year % 100:02d}",
        "Y": lambda: str(moment.year),
        "H": lambda: f"{moment.hour:02d}",
        "G": lambda: str(moment.hour),
        "h": lambda: f"{hour12:02d}",
        "g": lambda: str(hour12),
        "i": lambda: f"{moment.minute:02d}",
        "s": lambda: f"{moment.second:02d}",
        "A": lambda: "AM" if moment.hour < 12 else "PM",
        "a": lambda: "am" if moment.hour < 12 else "pm",
        "S": lambda: _english_suffix(moment.day),
    }
    produce = simple.get(char)
    return produce() if produce is not None else char


def _english_suffix(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
