"""Page tokens (google.aip.dev/158): opaque, bound to the request's filters.

A token holds the position after the last item returned and a hash of everything that
selects the items (the parent, filters, order). Reused with other filters it is refused,
naming `page_token`. It carries no secret: every query is scoped to the caller's
workspace anyway, so a forged position can only page through what the caller may see.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from mailwright.errors import InvalidArgument

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "binding", "make_token", "page_size", "read_token"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(value: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    if value < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    return min(value or default, maximum)


def binding(*parts: object) -> str:
    """A short hash of what selects the items."""
    text = json.dumps([str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def make_token(bound: str, position: list[Any]) -> str:
    raw = json.dumps({"b": bound, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_token(token: str, bound: str) -> list[Any] | None:
    """The position a token holds; None for no token. InvalidArgument if it is bad."""
    if not token:
        return None
    if len(token) > 2000:
        raise InvalidArgument.field("page_token", "is not a token this service issued")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise InvalidArgument.field("page_token", "is not a token this service issued") from error
    if not isinstance(data, dict) or not isinstance(data.get("p"), list):
        raise InvalidArgument.field("page_token", "is not a token this service issued")
    if data.get("b") != bound:
        raise InvalidArgument.field(
            "page_token", "was issued for a request with other filters or order; start again"
        )
    position: list[Any] = data["p"]
    return position
