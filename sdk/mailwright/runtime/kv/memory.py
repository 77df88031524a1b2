"""The in-process key-value backend, with the semantics of the Redis one.

Every store of one process opened on the same URL and namespace shares its data (as the
services of `mailwright up` must); the data lives while a store uses it. Expired keys
vanish on access and in a sweep once the writes since the last one reach a thousand or
the number of keys that sweep left, whichever is more: a sweep reads every key, so this
keeps its cost proportional to the writes (a sweep every thousand writes made loading
325,000 dedup keys quadratic) while expired keys at most double the store. Each operation
runs without an await in between, so it is atomic among the coroutines of the process.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailwright.runtime.kv.base import (
    KeyValueError,
    KeyValueStore,
    TokenGrant,
    Ttl,
    check_bucket,
    check_key,
    check_limit,
    check_value,
    seconds,
    ttl_milliseconds,
)

_SWEEP_EVERY = 1000


@dataclass
class _Item:
    kind: str
    value: Any
    expires: float | None = None


class _Space:
    def __init__(self) -> None:
        self.items: dict[str, _Item] = {}
        self.writes = 0
        self.next_sweep = _SWEEP_EVERY


_SPACES: weakref.WeakValueDictionary[tuple[str, str], _Space] = weakref.WeakValueDictionary()


def _deadline(ttl: Ttl | None) -> float | None:
    ms = ttl_milliseconds(ttl)
    return None if ms is None else time.monotonic() + ms / 1000


class MemoryStore(KeyValueStore):
    backend = "memory"

    def __init__(self, name: str, namespace: str) -> None:
        self.namespace = namespace
        space = _SPACES.get((name, namespace))
        if space is None:
            space = _Space()
            _SPACES[(name, namespace)] = space
        self._space = space

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- the dictionary -------------------------------------------------------------

    def _live(self, key: str) -> _Item | None:
        item = self._space.items.get(check_key(key))
        if item is not None and item.expires is not None and item.expires <= time.monotonic():
            del self._space.items[key]
            return None
        return item

    def _typed(self, key: str, kind: str) -> _Item | None:
        item = self._live(key)
        if item is not None and item.kind != kind:
            raise KeyValueError(f"WRONGTYPE: key {key!r} holds a {item.kind}, not a {kind}")
        return item

    def _put(self, key: str, item: _Item) -> None:
        self._space.items[key] = item
        space = self._space
        space.writes += 1
        if space.writes >= space.next_sweep:
            now = time.monotonic()
            expired = [
                k for k, v in space.items.items() if v.expires is not None and v.expires <= now
            ]
            for k in expired:
                del space.items[k]
            space.next_sweep = space.writes + max(_SWEEP_EVERY, len(space.items))

    # -- values and dedup keys ------------------------------------------------------

    async def set_if_absent(self, key: str, value: bytes = b"1", ttl: Ttl | None = None) -> bool:
        return (await self.set_many_if_absent([key], value, ttl))[0]

    async def set_many_if_absent(
        self, keys: Sequence[str], value: bytes = b"1", ttl: Ttl | None = None
    ) -> list[bool]:
        data, expires = check_value(value), _deadline(ttl)
        for key in keys:
            check_key(key)
        answers: list[bool] = []
        for key in keys:
            if self._live(key) is not None:
                answers.append(False)
            else:
                self._put(key, _Item("string", data, expires))
                answers.append(True)
        return answers

    async def get(self, key: str) -> bytes | None:
        item = self._typed(key, "string")
        return None if item is None else bytes(item.value)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        items = [self._live(key) for key in keys]
        return [bytes(i.value) if i is not None and i.kind == "string" else None for i in items]

    async def set(self, key: str, value: bytes, ttl: Ttl | None = None) -> None:
        check_key(key)
        self._put(key, _Item("string", check_value(value), _deadline(ttl)))

    async def delete(self, *keys: str) -> int:
        found = [key for key in keys if self._live(key) is not None]
        for key in found:
            del self._space.items[key]
        return len(found)

    async def ttl(self, key: str) -> float | None:
        item = self._live(key)
        if item is None or item.expires is None:
            return None
        return max(item.expires - time.monotonic(), 0.0)

    # -- counters -------------------------------------------------------------------

    async def incr(self, key: str, amount: int = 1, ttl: Ttl | None = None) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValueError("amount: must be an integer")
        expires = _deadline(ttl)
        item = self._typed(key, "string")
        if item is None:
            item = _Item("string", b"0")
        try:
            total = int(item.value) + amount
        except ValueError:
            raise KeyValueError(f"key {key!r} does not hold an integer") from None
        if item.expires is None:
            item.expires = expires
        item.value = str(total).encode()
        self._put(key, item)
        return total

    # -- rolling windows ------------------------------------------------------------

    def _window(self, key: str, window: Ttl) -> tuple[dict[str, float], float, float]:
        """The events of `key` still inside `window` (older ones dropped), now, and span."""
        span = seconds(window, "window")
        now = time.time()
        item = self._typed(key, "zset")
        events: dict[str, float] = {} if item is None else item.value
        for member in [m for m, at in events.items() if at <= now - span]:
            del events[member]
        return events, now, span

    def _store_window(self, key: str, events: dict[str, float], span: float) -> None:
        if events:
            self._put(key, _Item("zset", events, time.monotonic() + span))
        else:
            self._space.items.pop(key, None)

    async def window_add(self, key: str, window: Ttl, member: str | None = None) -> int:
        events, now, span = self._window(key, window)
        events[member or f"{now:.6f}-{uuid.uuid4().hex[:12]}"] = now
        self._store_window(key, events, span)
        return len(events)

    async def window_count(self, key: str, window: Ttl) -> int:
        span = seconds(window, "window")
        item = self._typed(key, "zset")
        if item is None:
            return 0
        since = time.time() - span
        return sum(1 for at in item.value.values() if at > since)

    async def window_add_if_below(
        self, key: str, window: Ttl, limit: int, member: str | None = None
    ) -> tuple[bool, int]:
        check_limit(limit)
        events, now, span = self._window(key, window)
        if member and member in events:
            return True, len(events)
        if len(events) >= limit:
            self._store_window(key, events, span)
            return False, len(events)
        events[member or f"{now:.6f}-{uuid.uuid4().hex[:12]}"] = now
        self._store_window(key, events, span)
        return True, len(events)

    # -- token buckets --------------------------------------------------------------

    async def take(self, key: str, rate: float, burst: float, tokens: float = 1) -> TokenGrant:
        check_bucket(rate, burst, tokens)
        now = time.monotonic()
        item = self._typed(key, "bucket")
        level, at = (float(burst), now) if item is None else item.value
        if now > at:
            level, at = min(float(burst), level + (now - at) * rate), now
        if level >= tokens:
            level, grant = level - tokens, TokenGrant(True, 0.0)
        else:
            grant = TokenGrant(False, (tokens - level) / rate)
        self._put(key, _Item("bucket", (level, at), now + burst / rate + 1))
        return grant
