"""Money: ISO 4217 currency codes and decimal amounts (never binary floating point)."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import list_currencies

__all__ = ["MAX_AMOUNT_CHARS", "format_money", "normalize_currency", "parse_money"]

MAX_AMOUNT_CHARS = 40
_AMOUNT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(str(code) for code in list_currencies())


def normalize_currency(value: str | None) -> str | None:
    """The ISO 4217 code (`EUR`) of a code written in any case, or None when unknown."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    return code if len(code) == 3 and code in _currencies() else None


def parse_money(value: object) -> Decimal:
    """A decimal amount from a number or a plain decimal string (`"19.99"`, `-5`, `1e2` no).

    A float is read by its shortest representation (`19.99` is `Decimal("19.99")`, not
    the binary approximation). Thousands separators and exponents are refused: they are
    ambiguous across locales. Raises `ValueError` saying what is wrong.
    """
    if isinstance(value, bool):
        raise ValueError("must be a decimal amount, not a boolean")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite amount")
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_AMOUNT_CHARS:
            raise ValueError(f"longer than {MAX_AMOUNT_CHARS} characters")
        if not _AMOUNT.match(text):
            raise ValueError(f"{text!r} is not a plain decimal amount such as 19.99")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{text!r} is not a decimal amount") from None
    else:
        raise ValueError(f"must be a decimal amount, not {type(value).__name__}")
    if not amount.is_finite():
        raise ValueError("must be a finite amount")
    if amount.adjusted() > 18:
        raise ValueError("is larger than 10^18")
    return amount


def format_money(amount: Decimal) -> str:
    """The amount as a plain decimal string, without exponent: `Decimal("1E+2")` → `100`."""
    return format(abs(amount) if amount.is_zero() else amount, "f")
