"""The audience sync runner: segment membership pushed to providers' audiences.

- `on_membership` (from `segments.membership` on the bus) records each transition of a
  followed segment as a pending row per destination — durably, before the bus message is
  acknowledged; per member the latest transition wins.
- `tick` leases the pending rows of a destination and segment as one change (at most the
  connector's `max_batch_size`), reads the members from the profile service, calls the
  connector's `sync`, and acknowledges: rows done, members and per-member failures
  recorded. A worker that dies mid-sync leaves its change leased; once the lease runs out
  that change (only it) is sent again, under the same change id.
- A `ProviderError` of the whole request puts the change back: retryable kinds after an
  exponential backoff (at least the provider's Retry-After), the others after
  `audience_parked_retry` with the error shown in the sync status.
- `resync_tick` walks a segment's members page by page (first-time setup, repair),
  queueing them, then queues the removal of members synced before that it did not see.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from mailwright.connectors import AudienceSync, Capability, MemberFailure, ProviderError
from mailwright.connectors.errors import ConnectorError
from mailwright.errors import FailedPrecondition, MailwrightError, NotFound
from mailwright.plugins import Plugins
from mailwright.runtime.db import Database
from mailwright.runtime.settings import Settings
from mailwright.segment.v1 import segment_pb2
from mailwright_delivery import policy
from mailwright_delivery.audiences import (
    Claim,
    Destination,
    DestinationState,
    Op,
    plan_change,
    retry_delay,
)
from mailwright_delivery.directory import Directory
from mailwright_delivery.settings import DeliverySettings
from mailwright_delivery.store import DeliveryStore
from mailwright_delivery.store.audience_queries import Acknowledged, Transition
from mailwright_delivery.store.audience_resync_queries import Resync

log = logging.getLogger(__name__)

RESYNC_PAGE = 1000


class AudienceConnectors:
    """Audience syncs by (connector, configuration section), opened once per process."""

    def __init__(self, plugins: Plugins, settings: Settings, config: DeliverySettings) -> None:
        self.plugins = plugins
        self.settings = settings
        self.config = config
        self._open: dict[tuple[str, str], AudienceSync] = {}
        self._lock = asyncio.Lock()

    def known(self) -> set[str]:
        return {c.name for c in self.plugins.connectors.with_capability(Capability.AUDIENCE_SYNC)}

    def check(self, workspace: str, connector: str, section: str) -> None:
        """Refuse a destination that could not be opened, naming what is wrong."""
        if connector not in self.known():
            known = ", ".join(sorted(self.known())) or "none installed"
            raise FailedPrecondition(
                f"connector {connector!r} has no audience sync (those that do: {known})"
            )
        if section != connector and section not in self.settings.connectors:
            raise FailedPrecondition(
                f"no connector configuration section {section!r} in this deployment "
                f"(sections: {', '.join(sorted(self.settings.connectors)) or 'none'})"
            )
        allowed = self.config.audience_config_workspaces.get(section)
        if allowed is not None and workspace not in allowed:
            raise FailedPrecondition(
                f"connector configuration {section!r} is reserved for other workspaces"
            )
        try:
            self.plugins.connectors.configure(connector, self.settings.connectors.get(section))
        except ConnectorError as error:
            raise FailedPrecondition(f"audience destination connector: {error}") from error

    async def get(self, connector: str, section: str) -> AudienceSync:
        key = (connector, section)
        if key in self._open:
            return self._open[key]
        async with self._lock:
            if key not in self._open:
                try:
                    self._open[key] = self.plugins.connectors.open_audience_sync(
                        connector, self.settings.connectors.get(section)
                    )
                except (ConnectorError, TypeError) as error:
                    raise FailedPrecondition(f"audience sync {connector!r}: {error}") from error
            return self._open[key]

    async def aclose(self) -> None:
        for sync in self._open.values():
            try:
                await sync.aclose()
            except Exception:
                log.exception("closing an audience sync failed")
        self._open.clear()


class AudienceRunner:
    def __init__(
        self,
        *,
        db: Database,
        store: DeliveryStore,
        directory: Directory,
        connectors: AudienceConnectors,
        settings: DeliverySettings,
        owner: str,
        notify: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = policy.utcnow,
    ) -> None:
        self.db = db
        self.store = store
        self.directory = directory
        self.connectors = connectors
        self.settings = settings
        self.owner = owner
        self.notify = notify
        self.clock = clock

    # -- from the bus -----------------------------------------------------------------

    async def on_membership(self, change: segment_pb2.MembershipChange) -> None:
        segment_id = change.segment.rsplit("/", 1)[-1]
        if not (change.workspace and segment_id and change.profile_id):
            return
        destinations = await self.db.run(
            self.store.destinations_following, change.workspace, segment_id
        )
        if not destinations:
            return
        if change.transition == segment_pb2.TRANSITION_ENTERED:
            op = Op.ADD
        elif change.transition == segment_pb2.TRANSITION_EXITED:
            op = Op.REMOVE
        else:
            return
        now = self.clock()
        at = change.occur_time.ToDatetime(tzinfo=now.tzinfo) if change.occur_time.seconds else now
        transitions = [Transition(d, segment_id, change.profile_id, op, at) for d in destinations]
        await self.db.run(self.store.enqueue, change.workspace, transitions, now)
        self.notify()

    # -- syncing changes --------------------------------------------------------------

    async def tick(self) -> int:
        """Sync up to `audience_concurrency` changes at once, spread over the ready
        destination and segment pairs (several changes of one segment hold different
        members, so they may go together); how many changes were handled."""
        now = self.clock()
        slots = self.settings.audience_concurrency
        ready = await self.db.run(self.store.due_groups, now, slots)
        if not ready:
            return 0
        groups = [ready[n % len(ready)] for n in range(slots)]
        outcomes = await asyncio.gather(
            *(self._sync_group(*group) for group in groups), return_exceptions=True
        )
        handled = 0
        for group, outcome in zip(groups, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.error("audience sync of %s/%s/%s failed", *group, exc_info=outcome)
            elif outcome:
                handled += 1
        return handled

    async def _sync_group(self, workspace: str, destination_id: str, segment_id: str) -> bool:
        destination = await self.db.run(self.store.get_destination, workspace, destination_id)
        if destination is None or destination.state is not DestinationState.ACTIVE:
            return False
        mapping = destination.segment(segment_id)
        if mapping is None:
            return False
        try:
            sync = await self.connectors.get(destination.connector, destination.connector_config)
        except FailedPrecondition as error:
            await self._park(destination, segment_id, error.message)
            return False
        now = self.clock()
        claim = await self.db.run(
            self.store.claim_change,
            workspace,
            destination_id,
            segment_id,
            uuid.uuid4().hex,
            max(1, min(sync.max_batch_size, self.settings.audience_batch_size)),
            now,
            now + self.settings.audience_lease,
        )
        if claim is None:
            return False
        await self.sync_claim(destination, claim, mapping.audience_name, sync)
        return True

    async def sync_claim(
        self, destination: Destination, claim: Claim, audience_name: str, sync: AudienceSync
    ) -> None:
        ws, dest, seg = claim.workspace, claim.destination_id, claim.segment_id
        try:
            found = await self.directory.audience_members(ws, list(claim.ops), destination.traits)
        except MailwrightError as error:
            await self._retry(claim, f"profile service: {error}", None, retryable=True)
            return
        removing = [p for p, op in claim.ops.items() if op is Op.REMOVE]
        synced = await self.db.run(self.store.synced_members, ws, dest, seg, removing)
        emails = [(m.email or "").lower() for m in synced.values()]
        emails += [(found[p].email or "").lower() for p in removing if p in found]
        holders = await self.db.run(self.store.address_holders, ws, dest, seg, emails)
        plan = plan_change(claim, audience_name, found, synced, holders)
        change = plan.change
        try:
            if change.added or change.removed:
                result = await sync.sync(change)
                refused: tuple[MemberFailure, ...] = result.failures
            else:
                refused = ()
        except ProviderError as error:
            code = f" ({error.code})" if error.code else ""
            await self._retry(
                claim,
                f"{destination.connector}: {error}{code}",
                error.retry_after,
                retryable=error.retryable,
            )
            return
        except Exception as error:
            # A connector that broke its contract: back off like a transient failure, so
            # the change is neither lost nor hammered, and show it in the status.
            log.exception("audience sync %s failed unexpectedly", destination.connector)
            await self._retry(
                claim,
                f"{destination.connector}: unexpected {type(error).__name__}",
                None,
                retryable=True,
            )
            return
        failed = {f.profile_id for f in refused}
        outcome = Acknowledged(
            added=[m for m in change.added if m.profile_id not in failed],
            removed=[m.profile_id for m in change.removed if m.profile_id not in failed]
            + list(plan.skipped_removals),
            failures=[*refused, *plan.missing],
        )
        await self.db.run(self.store.acknowledge, claim, outcome, self.clock())
        log.info(
            "audience %s/%s segment %s: change %s synced (%d added, %d removed, %d failed)",
            ws,
            dest,
            seg,
            claim.change_id,
            len(outcome.added),
            len(outcome.removed),
            len(outcome.failures),
        )

    async def _retry(
        self, claim: Claim, error: str, asked: timedelta | None, *, retryable: bool
    ) -> None:
        now = self.clock()
        if retryable:
            wait = retry_delay(
                claim.attempts + 1,
                self.settings.backoff_base,
                self.settings.backoff_cap,
                asked,
            )
        else:
            wait = self.settings.audience_parked_retry
        log.warning(
            "audience %s/%s segment %s: change %s failed (%s); next try in %ss",
            claim.workspace,
            claim.destination_id,
            claim.segment_id,
            claim.change_id,
            error,
            int(wait.total_seconds()),
        )
        await self.db.run(self.store.retry_later, claim, now + wait, error, now)

    async def _park(self, destination: Destination, segment_id: str, error: str) -> None:
        """The connector cannot be opened: hold the segment's rows, show the error."""
        now = self.clock()
        claim = await self.db.run(
            self.store.claim_change,
            destination.workspace,
            destination.id,
            segment_id,
            uuid.uuid4().hex,
            self.settings.audience_batch_size,
            now,
            now + self.settings.audience_lease,
        )
        if claim is not None:
            await self._retry(claim, error, None, retryable=False)

    # -- resyncs ----------------------------------------------------------------------

    async def start_resync(self, destination: Destination, segment_ids: Sequence[str]) -> str:
        resync_id = uuid.uuid4().hex
        now = self.clock()
        await self.db.run(
            self.store.start_resync,
            destination.workspace,
            destination.id,
            list(segment_ids),
            resync_id,
            now,
        )
        await self.db.run(self.store.make_due, destination.workspace, destination.id, now)
        return resync_id

    async def resync_tick(self) -> bool:
        """Queue one page of one running resync; True when there was one."""
        if not await self.db.run(self.store.running_resync_exists):
            return False
        now = self.clock()
        resync = await self.db.run(
            self.store.claim_resync, self.owner, now, now + self.settings.audience_lease
        )
        if resync is None:
            return False
        await self._resync_page(resync)
        return True

    async def _resync_page(self, resync: Resync) -> None:
        try:
            ids, next_token, total = await self.directory.member_page(
                resync.workspace, resync.segment_id, resync.page_token, RESYNC_PAGE
            )
        except NotFound:
            # The segment is gone: nobody is a member any more.
            await self.db.run(self.store.finish_resync, resync, self.owner, self.clock())
            return
        except MailwrightError as error:
            log.warning("resync of segment %s: %s; trying again", resync.segment_id, error)
            await self.db.run(
                self.store.release_resync,
                resync,
                self.owner,
                self.clock() + self.settings.backoff_base,
            )
            return
        kept = await self.db.run(
            self.store.resync_page, resync, ids, next_token, total, self.owner, self.clock()
        )
        if kept and not next_token:
            removals = await self.db.run(self.store.finish_resync, resync, self.owner, self.clock())
            log.info(
                "resync of %s/%s segment %s queued; %d gone members to remove",
                resync.workspace,
                resync.destination_id,
                resync.segment_id,
                removals,
            )
        elif kept:
            await self.db.run(self.store.release_resync, resync, self.owner, self.clock())
