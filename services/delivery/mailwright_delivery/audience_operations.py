"""The commands behind the audience destination RPCs: what creating, changing and
resyncing a destination checks and sets going."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from mailwright.errors import InvalidArgument, NotFound
from mailwright.runtime.db import Database
from mailwright_delivery import policy
from mailwright_delivery.audience_runner import AudienceConnectors, AudienceRunner
from mailwright_delivery.audiences import Destination, DestinationState
from mailwright_delivery.directory import Directory
from mailwright_delivery.store import DeliveryStore
from mailwright_delivery.store.audience_resync_queries import FailureRecord, SegmentStatus


class AudienceDestinations:
    def __init__(
        self,
        *,
        db: Database,
        store: DeliveryStore,
        directory: Directory,
        connectors: AudienceConnectors,
        runner: AudienceRunner,
        wake: Callable[[], None],
        clock: Callable[[], datetime] = policy.utcnow,
    ) -> None:
        self.db = db
        self.store = store
        self.directory = directory
        self.connectors = connectors
        self.runner = runner
        self.wake = wake
        self.clock = clock

    async def _check(self, destination: Destination, field: str) -> None:
        for index, mapping in enumerate(destination.segments):
            try:
                await self.directory.check_segment(destination.workspace, mapping.segment_id)
            except NotFound as error:
                raise InvalidArgument.field(
                    f"{field}.segments[{index}].segment", f"no segment {mapping.segment_id!r}"
                ) from error
        self.connectors.check(
            destination.workspace, destination.connector, destination.connector_config
        )

    async def create(self, destination: Destination) -> Destination:
        """Save the destination and start a full resync of its segments (first sync)."""
        await self._check(destination, "audience_destination")
        created = await self.db.run(self.store.create_destination, destination)
        await self.runner.start_resync(created, [s.segment_id for s in created.segments])
        self.wake()
        return created

    async def update(self, destination: Destination, before: Destination) -> Destination:
        """Save the change; segments new to the destination get a full resync."""
        await self._check(destination, "audience_destination")
        updated = await self.db.run(self.store.update_destination, destination)
        known = {s.segment_id for s in before.segments}
        new = [s.segment_id for s in updated.segments if s.segment_id not in known]
        if new:
            await self.runner.start_resync(updated, new)
        if updated.state is DestinationState.ACTIVE:
            await self.db.run(self.store.make_due, updated.workspace, updated.id, self.clock())
        self.wake()
        return updated

    async def resync(self, workspace: str, destination_id: str, segments: Sequence[str]) -> None:
        destination = await self.db.run(self.store.require_destination, workspace, destination_id)
        followed = [s.segment_id for s in destination.segments]
        for index, segment in enumerate(segments):
            if segment not in followed:
                raise InvalidArgument.field(
                    f"segments[{index}]", f"the destination does not sync segment {segment!r}"
                )
        await self.runner.start_resync(destination, list(segments) or followed)
        self.wake()

    async def status(
        self, workspace: str, destination_id: str
    ) -> tuple[Destination, dict[str, SegmentStatus], list[FailureRecord]]:
        destination = await self.db.run(self.store.require_destination, workspace, destination_id)
        statuses, failures = await self.db.run(
            self.store.audience_status, workspace, destination_id
        )
        return destination, statuses, failures
