"""Server URLs as they may be shown: in errors, logs and command output."""

from __future__ import annotations


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***` (user names are kept)."""
    scheme, separator, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    hidden = f"{user}:***" if user else "***"
    return f"{scheme}{separator}{hidden}@{location}"
