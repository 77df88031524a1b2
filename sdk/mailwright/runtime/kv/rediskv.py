"""The Redis key-value backend. Every key lives at `<namespace>:kv:<key>`.

Counters with a TTL, rolling windows (sorted sets scored by server time) and token
buckets (hashes) are Lua scripts, so each is one atomic step however many replicas share
the server, and all of them read the clock of the Redis server, not of the replicas.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from mailwright.runtime.kv.base import (
    KeyValueError,
    KeyValueStore,
    KeyValueUnavailable,
    TokenGrant,
    Ttl,
    check_bucket,
    check_key,
    check_limit,
    check_value,
    milliseconds,
    ttl_milliseconds,
)
from mailwright.runtime.redisclient import redis_client
from mailwright.runtime.urls import redact_url

_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
"""

_INCR = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return total
"""

_WINDOW_ADD = (
    _NOW_MS
    + """
local span = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.3f', now - span))
redis.call('ZADD', KEYS[1], string.format('%.3f', now), ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(span))
return redis.call('ZCARD', KEYS[1])
"""
)

_WINDOW_COUNT = (
    _NOW_MS
    + """
return redis.call('ZCOUNT', KEYS[1], string.format('(%.3f', now - tonumber(ARGV[1])), '+inf')
"""
)

_WINDOW_ADD_IF_BELOW = (
    _NOW_MS
    + """
local span, limit, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.3f', now - span))
local count = redis.call('ZCARD', KEYS[1])
if ARGV[4] == '1' and redis.call('ZSCORE', KEYS[1], member) then return {1, count} end
if count >= limit then return {0, count} end
redis.call('ZADD', KEYS[1], string.format('%.3f', now), member)
redis.call('PEXPIRE', KEYS[1], math.ceil(span))
return {1, count + 1}
"""
)

# One script for a whole batch of dedup keys, answering one string of 1s and 0s: a few µs
# of client CPU per key instead of the ~25 that encoding a pipelined SET and parsing its
# reply cost redis-py. A key repeated in KEYS is set by its first occurrence only.
_SET_MANY_IF_ABSENT = """
local out = {}
for i, key in ipairs(KEYS) do
  local set
  if ARGV[2] == '' then
    set = redis.call('SET', key, ARGV[1], 'NX')
  else
    set = redis.call('SET', key, ARGV[1], 'PX', ARGV[2], 'NX')
  end
  out[i] = set and '1' or '0'
end
return table.concat(out)
"""

_TAKE = (
    _NOW_MS
    + """
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local seconds = now / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local level = tonumber(state[1]) or burst
local at = tonumber(state[2]) or seconds
if seconds > at then
  level = math.min(burst, level + (seconds - at) * rate)
  at = seconds
end
local allowed, wait = 0, 0
if level >= want then
  level = level - want
  allowed = 1
else
  wait = (want - level) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', level), 'at', string.format('%.6f', at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, string.format('%.6f', wait)}
"""
)


class RedisStore(KeyValueStore):
    backend = "redis"

    def __init__(self, url: str, namespace: str) -> None:
        self.namespace = namespace
        self._url = url
        self._client: aioredis.Redis = redis_client(url)
        self._prefix = f"{namespace}:kv:"
        self._incr = self._client.register_script(_INCR)
        self._window_add = self._client.register_script(_WINDOW_ADD)
        self._window_count = self._client.register_script(_WINDOW_COUNT)
        self._window_add_if_below = self._client.register_script(_WINDOW_ADD_IF_BELOW)
        self._take = self._client.register_script(_TAKE)
        self._set_many_if_absent = self._client.register_script(_SET_MANY_IF_ABSENT)

    def _key(self, key: str) -> str:
        return self._prefix + check_key(key)

    @contextlib.asynccontextmanager
    async def _reaching(self) -> AsyncIterator[None]:
        try:
            yield
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as error:
            raise KeyValueUnavailable(
                f"the key-value store at {redact_url(self._url)} is unreachable: {error}"
            ) from error
        except redis_errors.ResponseError as error:
            raise KeyValueError(str(error)) from error

    async def open(self) -> None:
        async with self._reaching():
            await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()

    # -- values and dedup keys ------------------------------------------------------

    async def set_if_absent(self, key: str, value: bytes = b"1", ttl: Ttl | None = None) -> bool:
        return (await self.set_many_if_absent([key], value, ttl))[0]

    async def set_many_if_absent(
        self, keys: Sequence[str], value: bytes = b"1", ttl: Ttl | None = None
    ) -> list[bool]:
        data, ms = check_value(value), ttl_milliseconds(ttl)
        names = [self._key(key) for key in keys]
        if not names:
            return []
        async with self._reaching():
            reply: Any = await self._set_many_if_absent(
                keys=names, args=[data, "" if ms is None else ms]
            )
        return [flag == ord("1") for flag in bytes(reply)]

    async def get(self, key: str) -> bytes | None:
        async with self._reaching():
            reply: Any = await self._client.get(self._key(key))
        return None if reply is None else bytes(reply)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        names = [self._key(key) for key in keys]
        async with self._reaching(), self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(name)
            replies = await pipe.execute(raise_on_error=False)
        return [bytes(r) if isinstance(r, bytes) else None for r in replies]

    async def set(self, key: str, value: bytes, ttl: Ttl | None = None) -> None:
        name, data, ms = self._key(key), check_value(value), ttl_milliseconds(ttl)
        async with self._reaching():
            await self._client.set(name, data, px=ms)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        names = [self._key(key) for key in keys]
        async with self._reaching():
            return int(await self._client.delete(*names))

    async def ttl(self, key: str) -> float | None:
        async with self._reaching():
            remaining = int(await self._client.pttl(self._key(key)))
        return None if remaining < 0 else remaining / 1000

    # -- counters -------------------------------------------------------------------

    async def incr(self, key: str, amount: int = 1, ttl: Ttl | None = None) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValueError("amount: must be an integer")
        ms = ttl_milliseconds(ttl)
        async with self._reaching():
            total = await self._incr(keys=[self._key(key)], args=[amount, "" if ms is None else ms])
        return int(total)

    # -- rolling windows ------------------------------------------------------------

    async def window_add(self, key: str, window: Ttl, member: str | None = None) -> int:
        span = milliseconds(window, "window")
        async with self._reaching():
            count = await self._window_add(
                keys=[self._key(key)], args=[span, member or uuid.uuid4().hex]
            )
        return int(count)

    async def window_count(self, key: str, window: Ttl) -> int:
        span = milliseconds(window, "window")
        async with self._reaching():
            return int(await self._window_count(keys=[self._key(key)], args=[span]))

    async def window_add_if_below(
        self, key: str, window: Ttl, limit: int, member: str | None = None
    ) -> tuple[bool, int]:
        span, limit = milliseconds(window, "window"), check_limit(limit)
        args: list[str | int] = [span, limit, member or uuid.uuid4().hex, str(int(bool(member)))]
        async with self._reaching():
            recorded, count = await self._window_add_if_below(keys=[self._key(key)], args=args)
        return bool(recorded), int(count)

    # -- token buckets --------------------------------------------------------------

    async def take(self, key: str, rate: float, burst: float, tokens: float = 1) -> TokenGrant:
        check_bucket(rate, burst, tokens)
        async with self._reaching():
            allowed, wait = await self._take(
                keys=[self._key(key)],
                args=[repr(float(rate)), repr(float(burst)), repr(float(tokens))],
            )
        return TokenGrant(bool(allowed), float(wait))
