"""Opaque page tokens: the position after the last item, bound to the request's filters.

A token is URL-safe base64 of `{"after": ..., "filters": <hash>}`; reusing it with other
filters (another tag) is refused on `page_token`, as google.aip.dev/158 asks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from mailwright.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_TOKEN_CHARS = 1024


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _digest(filters: str) -> str:
    return hashlib.sha256(filters.encode()).hexdigest()[:16]


def encode(after: str, filters: str = "") -> str:
    raw = json.dumps({"after": after, "filters": _digest(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, filters: str = "") -> str:
    """The position a token carries ("" for no token); InvalidArgument on `page_token`."""
    if not token:
        return ""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument.field("page_token", "is not a token this service gave")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidArgument.field("page_token", "is not a token this service gave") from None
    if not isinstance(data, dict) or not isinstance(data.get("after"), str):
        raise InvalidArgument.field("page_token", "is not a token this service gave")
    if data.get("filters") != _digest(filters):
        raise InvalidArgument.field("page_token", "was given for other filters")
    after: str = data["after"]
    return after
