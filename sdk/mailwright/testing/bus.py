"""Fixtures to test code that uses the bus or the key-value store, on both backends.

- `bus_target`: parametrised over `memory` and `redis`; a URL and a namespace of the
  test's own (on Redis, the `redis_namespace`, whose keys are deleted afterwards).
- `kv_target`: the same for the key-value store.
- `bus` and `kv`: a connected bus (4 partitions) and key-value store on those targets.
- `fast_consumer_options`: consumer timings short enough for tests (leases of 0.6 s).
- `eventually(predicate)`: wait until a condition holds, failing after a timeout.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from mailwright.runtime import bus as bus_module
from mailwright.runtime import kv as kv_module
from mailwright.runtime.bus.model import ConsumerOptions

FAST_CONSUMER_OPTIONS = ConsumerOptions(
    lease_ttl=0.6,
    claim_idle=0.3,
    retry_backoff=0.05,
    block=0.05,
    housekeeping_interval=0.25,
)


@dataclass(frozen=True)
class Target:
    """Where a test's bus or key-value store lives."""

    backend: str
    url: str
    namespace: str


def _target(request: pytest.FixtureRequest) -> Target:
    if request.param == "memory":
        return Target("memory", "memory://", f"mwt-mem-{uuid.uuid4().hex[:12]}")
    url: str = request.getfixturevalue("redis_url")
    namespace: str = request.getfixturevalue("redis_namespace")
    return Target("redis", url, namespace)


@pytest.fixture(params=["memory", "redis"])
def bus_target(request: pytest.FixtureRequest) -> Target:
    return _target(request)


@pytest.fixture(params=["memory", "redis"])
def kv_target(request: pytest.FixtureRequest) -> Target:
    return _target(request)


@pytest.fixture
async def bus(bus_target: Target) -> AsyncIterator[bus_module.Bus]:
    connected = await bus_module.connect(
        bus_target.url, namespace=bus_target.namespace, partitions=4
    )
    yield connected
    await connected.close()


@pytest.fixture
async def kv(kv_target: Target) -> AsyncIterator[kv_module.KeyValueStore]:
    store = await kv_module.connect(kv_target.url, namespace=kv_target.namespace)
    yield store
    await store.close()


@pytest.fixture
def fast_consumer_options() -> ConsumerOptions:
    return FAST_CONSUMER_OPTIONS


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]],
    *,
    within: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> None:
    """Poll `predicate` (sync or async) until it is true; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        outcome = predicate()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{message} did not hold within {within}s")
        await asyncio.sleep(interval)
