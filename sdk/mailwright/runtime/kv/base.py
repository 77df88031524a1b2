"""The key-value interface: dedup keys, values with a TTL, counters, rolling windows and
token buckets, with one meaning on every backend.

Times are seconds (a float or a `timedelta`). Keys are strings of at most 1024
characters, stored under the store's namespace; values are bytes.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from datetime import timedelta
from typing import NamedTuple

Ttl = float | int | timedelta
MAX_KEY_CHARS = 1024
MAX_VALUE_BYTES = 1024 * 1024
MAX_BATCH = 10_000


class KeyValueError(Exception):
    """A key-value operation failed (e.g. a counter incremented on a non-integer value)."""


class KeyValueUnavailable(KeyValueError):
    """The key-value server cannot be reached; the operation may be retried."""


class TokenGrant(NamedTuple):
    """The answer of a token bucket: whether the tokens were taken, and if not, how long
    until they would be."""

    allowed: bool
    retry_after: float


def seconds(value: Ttl, field: str) -> float:
    """A positive duration in seconds, from seconds or a timedelta."""
    result = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(result, bool) or not isinstance(result, int | float):
        raise ValueError(f"{field}: must be seconds or a timedelta")
    if not math.isfinite(result) or result <= 0:
        raise ValueError(f"{field}: must be a positive duration")
    return float(result)


def milliseconds(value: Ttl, field: str) -> int:
    """A positive duration in whole milliseconds, rounded up."""
    return max(1, math.ceil(seconds(value, field) * 1000))


def ttl_milliseconds(ttl: Ttl | None) -> int | None:
    return None if ttl is None else milliseconds(ttl, "ttl")


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError("key: must be a non-empty string")
    if len(key) > MAX_KEY_CHARS:
        raise ValueError(f"key: longer than {MAX_KEY_CHARS} characters")
    return key


def check_value(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"value: must be bytes, not {type(value).__name__}")
    if len(value) > MAX_VALUE_BYTES:
        raise ValueError(f"value: more than {MAX_VALUE_BYTES} bytes")
    return bytes(value)


def check_bucket(rate: float, burst: float, tokens: float) -> None:
    for name, number in (("rate", rate), ("burst", burst), ("tokens", tokens)):
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ValueError(f"{name}: must be a number")
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"{name}: must be positive")
    if tokens > burst:
        raise ValueError(f"tokens: {tokens} is more than the bucket can hold (burst {burst})")


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError("limit: must be a non-negative integer")
    return limit


class KeyValueStore(abc.ABC):
    """Small shared state of the services, atomic across replicas on Redis."""

    backend: str
    namespace: str

    async def __aenter__(self) -> KeyValueStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def open(self) -> None:
        """Check the server answers (KeyValueUnavailable); `connect` calls this."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # -- values and dedup keys ------------------------------------------------------

    @abc.abstractmethod
    async def set_if_absent(self, key: str, value: bytes = b"1", ttl: Ttl | None = None) -> bool:
        """Set `key` unless it exists; True when this call set it (the first sighting of
        a dedup key). The TTL runs from this call."""

    @abc.abstractmethod
    async def set_many_if_absent(
        self, keys: Sequence[str], value: bytes = b"1", ttl: Ttl | None = None
    ) -> list[bool]:
        """`set_if_absent` for many keys in one round trip; one answer per key, in order.
        A key repeated within `keys` is set by its first occurrence only."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl: Ttl | None = None) -> None:
        """Set `key`, replacing any value and TTL; no TTL means it never expires."""

    @abc.abstractmethod
    async def delete(self, *keys: str) -> int:
        """Delete keys of any kind; return how many existed."""

    @abc.abstractmethod
    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires; None when it does not exist or never expires."""

    # -- counters -------------------------------------------------------------------

    @abc.abstractmethod
    async def incr(self, key: str, amount: int = 1, ttl: Ttl | None = None) -> int:
        """Add `amount` to the counter and return the new value. The TTL is set when the
        counter has none (so on creation) and not extended by later increments: a fixed
        window."""

    # -- rolling windows ------------------------------------------------------------

    @abc.abstractmethod
    async def window_add(self, key: str, window: Ttl, member: str | None = None) -> int:
        """Record an event now; return how many events the last `window` holds, this one
        included. Events older than `window` are forgotten, so record with the longest
        window you will count. Recording the same `member` again moves it to now and does
        not count it twice (pass a send id to make a retry harmless)."""

    @abc.abstractmethod
    async def window_count(self, key: str, window: Ttl) -> int:
        """How many events were recorded in the last `window` seconds."""

    @abc.abstractmethod
    async def window_add_if_below(
        self, key: str, window: Ttl, limit: int, member: str | None = None
    ) -> tuple[bool, int]:
        """Atomically: when fewer than `limit` events are in the last `window`, record one.
        Returns (recorded, count afterwards). A `member` already in the window counts
        as recorded without being added again. The frequency cap primitive."""

    # -- token buckets --------------------------------------------------------------

    @abc.abstractmethod
    async def take(self, key: str, rate: float, burst: float, tokens: float = 1) -> TokenGrant:
        """Take `tokens` from the bucket at `key`, which refills at `rate` tokens per
        second up to `burst` (and starts full). Atomic across replicas."""
