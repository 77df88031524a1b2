"""Opaque page tokens: the position and a hash of the filters (AIP-158)."""

from __future__ import annotations

import base64
import hashlib
import json

from mailwright.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _digest(filters: object) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:16]


def encode(after: str, filters: object) -> str:
    raw = json.dumps({"a": after, "f": _digest(filters)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, filters: object) -> str:
    """The position a token names ("" for the first page); refused with other filters."""
    if not token:
        return ""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, digest = data["a"], data["f"]
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidArgument.field("page_token", "is not a token this API issued") from error
    if not isinstance(after, str) or digest != _digest(filters):
        raise InvalidArgument.field("page_token", "was issued for a request with other filters")
    return after
