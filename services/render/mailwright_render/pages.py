"""Page sizes and opaque page tokens of the List RPCs (google.aip.dev/158).

A token carries the position after which the next page starts and a hash of the
request's filters, so a token reused with other filters (another template's versions,
another workspace) is refused instead of silently paging through something else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from mailwright.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_MAX_TOKEN_CHARS = 512


@dataclass(frozen=True)
class Page:
    size: int
    after: str | None


def _fingerprint(filters: str) -> str:
    return hashlib.sha256(filters.encode()).hexdigest()[:16]


def page_request(page_size: int, page_token: str, filters: str) -> Page:
    """The page a request asks for; InvalidArgument names `page_size` or `page_token`."""
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return Page(size, None)
    bad = InvalidArgument.field("page_token", "is not a token this list returned")
    if len(page_token) > _MAX_TOKEN_CHARS:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4))
        position, fingerprint = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise bad from None
    if not isinstance(position, str) or fingerprint != _fingerprint(filters):
        raise InvalidArgument.field(
            "page_token", "was issued for a different request; keep the other fields the same"
        )
    return Page(size, position)


def next_page_token(position: str, filters: str) -> str:
    raw = json.dumps([position, _fingerprint(filters)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
