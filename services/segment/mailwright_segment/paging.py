"""Page sizes and opaque page tokens (google.aip.dev/158).

A token carries the position after which the next page starts and a hash of the request's
filters; a token used with other filters is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from mailwright.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(value: int, field: str = "page_size") -> int:
    if value < 0:
        raise InvalidArgument.field(field, "must not be negative")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _digest(filters: str) -> str:
    return hashlib.sha256(filters.encode()).hexdigest()[:16]


def encode(position: str | int, filters: str) -> str:
    raw = json.dumps({"p": position, "f": _digest(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, filters: str, field: str = "page_token") -> str | int | None:
    """The position a token carries (None for no token)."""
    if not token:
        return None
    if len(token) > 1000:
        raise InvalidArgument.field(field, "is not a page token of this list")
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidArgument.field(field, "is not a page token of this list") from None
    if not isinstance(data, dict) or not isinstance(data.get("p"), str | int):
        raise InvalidArgument.field(field, "is not a page token of this list")
    if data.get("f") != _digest(filters):
        raise InvalidArgument.field(field, "was issued for a request with other filters")
    position: str | int = data["p"]
    return position
