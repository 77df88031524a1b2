"""A fake upstream for the service tests: what the profile service would publish.

The tests drive the segment service only through the bus (`profiles.changed`,
`profiles.deleted`) and its gRPC API, never through the profile service's internals.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1 import event_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.bus import Bus, Message
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings
from mailwright.segment.v1 import segment_pb2
from mailwright.testing.bus import FAST_CONSUMER_OPTIONS


def stamp(at: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(at)
    return value


def event(
    name: str,
    at: datetime | None = None,
    properties: Mapping[str, Any] | None = None,
    message_id: str | None = None,
) -> event_pb2.Event:
    props = struct_pb2.Struct()
    props.update(dict(properties or {}))
    return event_pb2.Event(
        type=event_pb2.EVENT_TYPE_TRACK,
        event=name,
        message_id=message_id or uuid.uuid4().hex,
        timestamp=stamp(at or datetime.now(UTC)),
        properties=props,
    )


def changed(
    ws: str,
    profile_id: str,
    *,
    version: int = 0,
    traits: Mapping[str, Any] | None = None,
    removed: Sequence[str] = (),
    events: Sequence[event_pb2.Event] = (),
    merged: Sequence[str] = (),
) -> profile_pb2.ProfileChanged:
    message = profile_pb2.ProfileChanged(
        workspace=ws,
        profile_id=profile_id,
        version=version,
        removed_traits=list(removed),
        events=list(events),
        merged_profile_ids=list(merged),
        occur_time=stamp(datetime.now(UTC)),
    )
    message.traits.update(dict(traits or {}))
    for e in message.events:
        e.profile_id = profile_id
        e.workspace = ws
    return message


@dataclass
class Upstream:
    """Publishes what the profile service would, and records `segments.membership`."""

    platform: Platform
    bus: Bus
    received: list[segment_pb2.MembershipChange] = field(default_factory=list)

    async def change(self, message: profile_pb2.ProfileChanged) -> None:
        await self.bus.publish(
            "profiles.changed",
            message.SerializeToString(),
            key=f"{message.workspace}:{message.profile_id}",
        )

    async def delete(self, ws: str, profile_id: str, merged: Sequence[str] = ()) -> None:
        message = profile_pb2.ProfileDeleted(
            workspace=ws, profile_id=profile_id, merged_profile_ids=list(merged)
        )
        await self.bus.publish(
            "profiles.deleted", message.SerializeToString(), key=f"{ws}:{profile_id}"
        )

    async def on_membership(self, message: Message) -> None:
        self.received.append(segment_pb2.MembershipChange.FromString(message.value))

    def transitions(self, segment_id: str = "", profile_id: str = "") -> list[tuple[str, str, str]]:
        """(segment id, profile id, entered/exited) received, in order."""
        out = []
        for change in self.received:
            sid = change.segment.rsplit("/", 1)[-1]
            if (segment_id and sid != segment_id) or (
                profile_id and change.profile_id != profile_id
            ):
                continue
            kind = "entered" if change.transition == segment_pb2.TRANSITION_ENTERED else "exited"
            out.append((sid, change.profile_id, kind))
        return out

    async def wait_for(self, count: int, within: float = 10.0, **match: str) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while len(self.transitions(**match)) < count:
            if asyncio.get_running_loop().time() > deadline:
                got = self.transitions(**match)
                raise AssertionError(f"expected {count} transitions matching {match}, got {got}")
            await asyncio.sleep(0.02)


def settings_for(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "grpc_port": 0,
        "http_port": 0,
        "auth_secret": "s" * 48,
        "database_url": database_url,
        "bus_url": f"memory://segment-{uuid.uuid4().hex}",
        "shutdown_grace": 1,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Upstream]:
    platform = Platform(settings, resolve_services(["segment"]))
    try:
        await platform.start()
        assert platform.runtime is not None
        upstream = Upstream(platform, platform.runtime.bus)
        listener = platform.runtime.bus.subscribe(
            "segments.membership",
            "test-listener",
            upstream.on_membership,
            options=FAST_CONSUMER_OPTIONS,
        )
        await listener.start()
        try:
            yield upstream
        finally:
            await listener.stop()
    finally:
        await platform.stop()
