"""Email providers by name, the workspace delivery policies, and the shared rate limit.

Providers are opened through the plugin registry (`open_email_provider`), configured by
the connector configuration mechanism (environment, secrets directory, the YAML file),
once per process. Each provider's declared rate is enforced with a token bucket in the
key-value store, so every replica draws from the same bucket; a workspace's policy may
lower its own share further.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from mailwright.connectors import Capability, EmailProvider
from mailwright.connectors.errors import ConnectorError
from mailwright.errors import FailedPrecondition
from mailwright.plugins import Plugins
from mailwright.runtime.db import Database
from mailwright.runtime.kv import KeyValueStore
from mailwright.runtime.settings import Settings
from mailwright_delivery.convert import read_policy
from mailwright_delivery.model import DeliveryPolicy
from mailwright_delivery.store import DeliveryStore

log = logging.getLogger(__name__)


class Providers:
    def __init__(self, plugins: Plugins, settings: Settings) -> None:
        self.plugins = plugins
        self.settings = settings
        self._open: dict[str, EmailProvider] = {}
        self._lock = asyncio.Lock()

    def known(self) -> set[str]:
        return {c.name for c in self.plugins.connectors.with_capability(Capability.EMAIL_PROVIDER)}

    async def get(self, name: str) -> EmailProvider:
        """The provider `name`, opened on first use; FailedPrecondition when it cannot be
        (unknown, or misconfigured — the message names the field)."""
        if name in self._open:
            return self._open[name]
        async with self._lock:
            if name not in self._open:
                try:
                    self._open[name] = self.plugins.connectors.open_email_provider(
                        name, self.settings.connectors.get(name)
                    )
                except ConnectorError as error:
                    raise FailedPrecondition(f"email provider {name!r}: {error}") from error
            return self._open[name]

    async def aclose(self) -> None:
        for provider in self._open.values():
            try:
                await provider.aclose()
            except Exception:
                log.exception("closing an email provider failed")
        self._open.clear()


class Policies:
    """Each workspace's delivery policy, read through a short cache."""

    def __init__(self, db: Database, store: DeliveryStore, ttl: float = 2.0) -> None:
        self.db = db
        self.store = store
        self.ttl = ttl
        self._cache: dict[str, tuple[float, DeliveryPolicy]] = {}

    async def get(self, workspace: str) -> DeliveryPolicy:
        cached = self._cache.get(workspace)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        policy = read_policy(await self.db.run(self.store.get_policy, workspace))
        self._cache[workspace] = (now, policy)
        return policy

    def forget(self, workspace: str) -> None:
        self._cache.pop(workspace, None)


class RateLimiter:
    """Token buckets shared across replicas: one per provider, one per workspace policy."""

    def __init__(self, kv: KeyValueStore) -> None:
        self.kv = kv

    async def acquire(
        self,
        provider: str,
        rate: float,
        burst: float,
        tokens: int,
        workspace_rate: float = 0.0,
        workspace: str = "",
    ) -> None:
        """Wait until `tokens` sends may go to `provider`."""
        await self._take(f"rate:esp:{provider}", rate, max(burst, tokens), tokens)
        if workspace_rate > 0 and workspace:
            await self._take(
                f"rate:esp:{provider}:{workspace}",
                workspace_rate,
                max(workspace_rate, tokens),
                tokens,
            )

    async def _take(self, key: str, rate: float, burst: float, tokens: int) -> None:
        while True:
            grant = await self.kv.take(key, rate=rate, burst=burst, tokens=tokens)
            if grant.allowed:
                return
            await asyncio.sleep(min(max(grant.retry_after, 0.001), 5.0))


def chunk_size(provider: EmailProvider, batch: int) -> int:
    burst = max(1, int(provider.rate_limit.burst))
    return max(1, min(provider.max_batch_size, burst, batch))


def as_delay(value: timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0
