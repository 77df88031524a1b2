"""Exporting profiles, events and send outcomes to date-partitioned Parquet.

Reads Mailwright through its public gRPC API — `ListProfiles` (profiles changed in the
window, newest first), `ListProfileEvents` (the events of profiles seen in the window) and
`ListSends` (sends created in the window) — and writes three Hive-style datasets:

    <out>/profiles/dt=2026-03-01/part-<window>-00000.parquet
    <out>/events/dt=2026-03-01/part-<window>-00000.parquet
    <out>/sends/dt=2026-03-01/part-<window>-00000.parquet

`dt` is the UTC date of the profile's `update_time`, the event's `timestamp`, the send's
`create_time`. Each dataset has an explicit Arrow schema (below): timestamps are
`timestamp[us, UTC]`, traits, properties and context are JSON text, identities a list of
`(type, value)` structs. DuckDB (`read_parquet('<out>/events/*/*.parquet',
hive_partitioning = true)`), Spark and `pyarrow.dataset(…, partitioning="hive")` read them
as tables with a `dt` column. File names carry the window, so exporting the same window
again replaces its files rather than adding duplicates; files are written to a temporary
name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1.event_pb2 import Event, EventType
from mailwright.delivery.v1 import delivery_pb2, delivery_pb2_grpc
from mailwright.profile.v1 import profile_pb2, profile_pb2_grpc

TIME = pa.timestamp("us", tz="UTC")
IDENTITY = pa.struct([("type", pa.string()), ("value", pa.string())])

PROFILES = pa.schema(
    [
        ("workspace", pa.string()),
        ("profile_id", pa.string()),
        ("identities", pa.list_(IDENTITY)),
        ("traits", pa.string()),
        ("computed_traits", pa.string()),
        ("merged_profiles", pa.list_(pa.string())),
        ("version", pa.int64()),
        ("create_time", TIME),
        ("update_time", TIME),
        ("first_seen_time", TIME),
        ("last_seen_time", TIME),
    ]
)
EVENTS = pa.schema(
    [
        ("workspace", pa.string()),
        ("profile_id", pa.string()),
        ("message_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("name", pa.string()),
        ("user_id", pa.string()),
        ("anonymous_id", pa.string()),
        ("source", pa.string()),
        ("identities", pa.list_(IDENTITY)),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("context", pa.string()),
        ("timestamp", TIME),
        ("received_at", TIME),
    ]
)
SENDS = pa.schema(
    [
        ("workspace", pa.string()),
        ("send_id", pa.string()),
        ("idempotency_key", pa.string()),
        ("campaign", pa.string()),
        ("journey", pa.string()),
        ("journey_step", pa.string()),
        ("profile_id", pa.string()),
        ("state", pa.string()),
        ("reason", pa.string()),
        ("variant", pa.string()),
        ("holdout", pa.bool_()),
        ("provider", pa.string()),
        ("provider_message_id", pa.string()),
        ("attempts", pa.int32()),
        ("category", pa.string()),
        ("create_time", TIME),
        ("send_time", TIME),
        ("open_time", TIME),
        ("click_time", TIME),
        ("due_time", TIME),
    ]
)
DATASETS: Mapping[str, pa.Schema] = {"profiles": PROFILES, "events": EVENTS, "sends": SENDS}
PART_ROWS = 100_000


def when(stamp: Timestamp) -> datetime | None:
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    return stamp.ToDatetime(UTC)


def as_json(message: Message) -> str | None:
    if message.ByteSize() == 0:
        return None
    return json.dumps(json_format.MessageToDict(message), sort_keys=True, separators=(",", ":"))


def profile_row(workspace: str, profile: profile_pb2.Profile) -> dict[str, Any]:
    return {
        "workspace": workspace,
        "profile_id": profile.profile_id or profile.name.rsplit("/", 1)[-1],
        "identities": [
            {"type": i.identity.type, "value": i.identity.value} for i in profile.identities
        ],
        "traits": as_json(profile.traits),
        "computed_traits": as_json(profile.computed_traits),
        "merged_profiles": list(profile.merged_profiles),
        "version": profile.version,
        "create_time": when(profile.create_time),
        "update_time": when(profile.update_time),
        "first_seen_time": when(profile.first_seen_time),
        "last_seen_time": when(profile.last_seen_time),
    }


def event_row(workspace: str, profile_id: str, event: Event) -> dict[str, Any]:
    return {
        "workspace": event.workspace or workspace,
        "profile_id": event.profile_id or profile_id,
        "message_id": event.message_id,
        "type": EventType.Name(event.type).removeprefix("EVENT_TYPE_").lower(),
        "event": event.event or None,
        "name": event.name or None,
        "user_id": event.user_id or None,
        "anonymous_id": event.anonymous_id or None,
        "source": event.source or None,
        "identities": [{"type": i.type, "value": i.value} for i in event.identities],
        "properties": as_json(event.properties),
        "traits": as_json(event.traits),
        "context": as_json(event.context),
        "timestamp": when(event.timestamp),
        "received_at": when(event.received_at),
    }


def send_row(workspace: str, send: delivery_pb2.Send) -> dict[str, Any]:
    state = delivery_pb2.SendState.Name(send.state).removeprefix("SEND_STATE_").lower()
    category = delivery_pb2.Category.Name(send.category).removeprefix("CATEGORY_").lower()
    return {
        "workspace": workspace,
        "send_id": send.name.rsplit("/", 1)[-1],
        "idempotency_key": send.idempotency_key,
        "campaign": send.campaign or None,
        "journey": send.journey or None,
        "journey_step": send.journey_step or None,
        "profile_id": send.profile_id or None,
        "state": state,
        "reason": send.reason or None,
        "variant": send.variant or None,
        "holdout": send.holdout,
        "provider": send.provider or None,
        "provider_message_id": send.provider_message_id or None,
        "attempts": send.attempts,
        "category": category,
        "create_time": when(send.create_time),
        "send_time": when(send.send_time),
        "open_time": when(send.open_time),
        "click_time": when(send.click_time),
        "due_time": when(send.due_time),
    }


class PartitionedWriter:
    """Rows of one dataset, buffered per `dt`, written as Parquet parts of the window."""

    def __init__(self, out: Path, dataset: str, schema: pa.Schema, window: str) -> None:
        self.root = out / dataset
        self.schema = schema
        self.window = window
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.parts: dict[str, int] = {}
        self.written: list[Path] = []
        self.count = 0

    def add(self, day: datetime | None, row: dict[str, Any]) -> None:
        dt = (day or datetime(1970, 1, 1, tzinfo=UTC)).strftime("%Y-%m-%d")
        bucket = self.rows.setdefault(dt, [])
        bucket.append(row)
        self.count += 1
        if len(bucket) >= PART_ROWS:
            self._flush(dt)

    def _flush(self, dt: str) -> None:
        rows = self.rows.pop(dt, [])
        if not rows:
            return
        part = self.parts.get(dt, 0)
        self.parts[dt] = part + 1
        directory = self.root / f"dt={dt}"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"part-{self.window}-{part:05d}.parquet"
        temporary = directory / f".{target.name}.tmp"
        table = pa.Table.from_pylist(rows, schema=self.schema)
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, target)
        self.written.append(target)

    def close(self) -> None:
        for dt in list(self.rows):
            self._flush(dt)


@dataclass
class ExportResult:
    counts: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


Progress = Callable[[str, int], None]


class Exporter:
    """One workspace's profiles, events and sends of a time window, as Parquet datasets."""

    def __init__(
        self,
        *,
        profiles: profile_pb2_grpc.ProfileServiceAsyncStub,
        delivery: delivery_pb2_grpc.DeliveryServiceAsyncStub,
        workspace: str,
        out: Path,
        since: datetime,
        until: datetime,
        page_size: int = 500,
    ) -> None:
        if since.tzinfo is None or until.tzinfo is None or since >= until:
            raise ValueError("since must be before until, both timezone-aware")
        self.profiles, self.delivery = profiles, delivery
        self.workspace, self.parent = workspace, f"workspaces/{workspace}"
        self.out, self.since, self.until = out, since, until
        self.page_size = page_size
        self.window = f"{since:%Y%m%dT%H%M%S}-{until:%Y%m%dT%H%M%S}"

    def _inside(self, moment: datetime | None) -> bool:
        return moment is not None and self.since <= moment < self.until

    async def run(
        self, datasets: tuple[str, ...] = tuple(DATASETS), progress: Progress | None = None
    ) -> ExportResult:
        result = ExportResult()
        for dataset in datasets:
            writer = PartitionedWriter(self.out, dataset, DATASETS[dataset], self.window)
            export = {"profiles": self._profiles, "events": self._events, "sends": self._sends}
            await export[dataset](writer, progress or (lambda _name, _count: None))
            writer.close()
            result.counts[dataset] = writer.count
            result.files += writer.written
        return result

    async def _profile_pages(self, order_by: str) -> Any:
        token = ""
        while True:
            page = await self.profiles.ListProfiles(
                profile_pb2.ListProfilesRequest(
                    parent=self.parent,
                    page_size=self.page_size,
                    page_token=token,
                    order_by=order_by,
                )
            )
            yield page.profiles
            token = page.next_page_token
            if not token:
                return

    async def _profiles(self, writer: PartitionedWriter, progress: Progress) -> None:
        async for profiles in self._profile_pages("update_time desc"):
            for profile in profiles:
                updated = when(profile.update_time)
                if self._inside(updated):
                    writer.add(updated, profile_row(self.workspace, profile))
            progress("profiles", writer.count)
            oldest = [when(p.update_time) for p in profiles]
            if oldest and all(t is not None and t < self.since for t in oldest):
                return  # newest first: the rest changed before the window

    async def _events(self, writer: PartitionedWriter, progress: Progress) -> None:
        async for profiles in self._profile_pages("last_seen_time desc"):
            for profile in profiles:
                if (when(profile.last_seen_time) or self.since) < self.since:
                    continue
                await self._events_of(profile, writer)
            progress("events", writer.count)
            seen = [when(p.last_seen_time) for p in profiles]
            if seen and all(t is not None and t < self.since for t in seen):
                return

    async def _events_of(self, profile: profile_pb2.Profile, writer: PartitionedWriter) -> None:
        profile_id = profile.profile_id or profile.name.rsplit("/", 1)[-1]
        start, end = Timestamp(), Timestamp()
        start.FromDatetime(self.since)
        end.FromDatetime(self.until)
        token = ""
        while True:
            page = await self.profiles.ListProfileEvents(
                profile_pb2.ListProfileEventsRequest(
                    parent=f"{self.parent}/profiles/{profile_id}",
                    page_size=self.page_size,
                    page_token=token,
                    start_time=start,
                    end_time=end,
                )
            )
            for event in page.events:
                happened = when(event.timestamp)
                if self._inside(happened):
                    writer.add(happened, event_row(self.workspace, profile_id, event))
            token = page.next_page_token
            if not token:
                return

    async def _sends(self, writer: PartitionedWriter, progress: Progress) -> None:
        token = ""
        while True:
            page = await self.delivery.ListSends(
                delivery_pb2.ListSendsRequest(
                    parent=self.parent, page_size=self.page_size, page_token=token
                )
            )
            for send in page.sends:
                created = when(send.create_time)
                if self._inside(created):
                    writer.add(created, send_row(self.workspace, send))
            progress("sends", writer.count)
            token = page.next_page_token
            if not token:
                return
