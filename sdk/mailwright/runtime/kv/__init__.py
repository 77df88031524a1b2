"""Small shared state: dedup keys, values with a TTL, counters, rolling windows, token
buckets.

    kv = await connect(settings.effective_kv_url, namespace=settings.namespace)
    if await kv.set_if_absent(f"dedup:{workspace}:{message_id}", ttl=86400): ...
    allowed, retry_after = await kv.take(f"rate:esp:{provider}", rate=14, burst=14)

`memory://` keeps the data in the process; `redis://`, `rediss://` and `unix://` share it
between replicas through Redis, atomically (Lua scripts, server clock).
"""

from __future__ import annotations

from mailwright.runtime.kv.base import (
    KeyValueError,
    KeyValueStore,
    KeyValueUnavailable,
    TokenGrant,
    Ttl,
)
from mailwright.runtime.kv.memory import MemoryStore
from mailwright.runtime.urls import redact_url

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


async def connect(url: str, *, namespace: str = "mailwright") -> KeyValueStore:
    """Open the store at `url`; raise KeyValueUnavailable when its server does not answer."""
    if not namespace:
        raise ValueError("namespace: must not be empty")
    store: KeyValueStore
    if url.startswith("memory://"):
        store = MemoryStore(url.removeprefix("memory://").strip("/"), namespace)
    elif url.startswith(REDIS_SCHEMES):
        from mailwright.runtime.kv.rediskv import RedisStore

        store = RedisStore(url, namespace)
    else:
        raise ValueError(
            f"kv_url: {redact_url(url)!r} must start with memory://, redis://, rediss:// or unix://"
        )
    try:
        await store.open()
    except BaseException:
        await store.close()
        raise
    return store


__all__ = [
    "KeyValueError",
    "KeyValueStore",
    "KeyValueUnavailable",
    "TokenGrant",
    "Ttl",
    "connect",
]
