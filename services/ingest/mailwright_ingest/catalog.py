"""What ingest needs to know per workspace on every call, read once and kept briefly.

Every event needs its workspace's policy and taxonomy, and every HTTP call its write
key: reading the database each time would cost more than the rest of the work. The
catalog keeps them for `policy_cache_ttl` / `write_key_cache_ttl`; a change made through
this replica is seen at once (the API invalidates), one made through another replica
within the TTL. Concurrent misses for one workspace share one read.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mailwright.taxonomy import EventSpec
from mailwright_ingest.config import IngestSettings
from mailwright_ingest.policy import Policy
from mailwright_ingest.store import IngestStore, StoredWriteKey
from mailwright_ingest.taxonomy import Taxonomy

NEGATIVE_TTL = 5.0
MAX_CACHED_KEYS = 50_000
WRITE_KEY = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


@dataclass(frozen=True)
class WorkspaceConfig:
    workspace: str
    policy: Policy
    taxonomy: Taxonomy


def hash_write_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Catalog:
    def __init__(
        self, store: IngestStore, settings: IngestSettings, seed: Sequence[EventSpec]
    ) -> None:
        self.store = store
        self.settings = settings
        self.seed = tuple(seed) if settings.seed_default_taxonomy else ()
        self._configs: dict[str, tuple[float, WorkspaceConfig]] = {}
        self._loading: dict[str, asyncio.Future[WorkspaceConfig]] = {}
        self._keys: dict[str, tuple[float, StoredWriteKey | None]] = {}

    # -- workspaces -------------------------------------------------------------------

    async def config(self, workspace: str) -> WorkspaceConfig:
        """The workspace's policy and taxonomy (created with the defaults on first use)."""
        cached = self._configs.get(workspace)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        pending = self._loading.get(workspace)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[WorkspaceConfig] = asyncio.get_running_loop().create_future()
        self._loading[workspace] = future
        try:
            config = await self.store.db.run(self._load, workspace)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved here, so an unawaited future does not warn
            raise
        finally:
            self._loading.pop(workspace, None)
        ttl = self.settings.policy_cache_ttl.total_seconds()
        self._configs[workspace] = (time.monotonic() + ttl, config)
        future.set_result(config)
        return config

    def _load(self, workspace: str) -> WorkspaceConfig:
        policy = self.store.get_policy(workspace)
        if policy is None:
            self.store.ensure_workspace(workspace, Policy.defaults(self.settings), self.seed)
            policy = self.store.get_policy(workspace)
            assert policy is not None
        taxonomy = Taxonomy(self.store.all_definitions(workspace))
        return WorkspaceConfig(workspace, policy, taxonomy)

    async def ensure(self, workspace: str) -> Policy:
        """The workspace's policy, creating the workspace first if need be."""
        return (await self.config(workspace)).policy

    def invalidate(self, workspace: str) -> None:
        self._configs.pop(workspace, None)

    # -- write keys -------------------------------------------------------------------

    async def write_key(self, key: str) -> StoredWriteKey | None:
        """The live (unrevoked) write key `key`, or None."""
        if not WRITE_KEY.match(key):
            return None
        digest = hash_write_key(key)
        now = time.monotonic()
        cached = self._keys.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self.store.db.run(self.store.find_write_key, digest)
        if found is not None and found.revoke_time is not None:
            found = None
        ttl = self.settings.write_key_cache_ttl.total_seconds() if found else NEGATIVE_TTL
        if len(self._keys) >= MAX_CACHED_KEYS:
            self._keys.clear()
        self._keys[digest] = (now + ttl, found)
        return found

    def forget_write_keys(self) -> None:
        self._keys.clear()
