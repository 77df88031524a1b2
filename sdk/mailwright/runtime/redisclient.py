"""The one way Mailwright opens a Redis connection pool (bus and key-value store).

Timeouts are set so that a stalled server turns into an error the caller can handle
(BusUnavailable, KeyValueUnavailable) instead of a coroutine waiting forever; the socket
timeout is well above the longest blocking read of a bus consumer (10 s).
"""

from __future__ import annotations

import redis.asyncio as aioredis

CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 30.0


def redis_client(url: str) -> aioredis.Redis:
    """A client for `url` (redis://, rediss://, unix://) returning bytes."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=False,
        health_check_interval=30,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
    )
