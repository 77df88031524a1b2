"""The profile service's tables and queries: profiles, identities, traits, event history.

Only this module knows SQLAlchemy. Applying an event is one transaction: the event row
(unique by workspace and message id, which makes a redelivered event a no-op), the
identities it carries, and its traits, each trait kept only if the event is newer than
the value held (last write wins by event time, so late events never overwrite newer ones).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from mailwright.runtime.db import Database
from mailwright.runtime.requests import request_log_table

metadata = sa.MetaData()

profiles = sa.Table(
    "profile_profiles",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("profile_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False, default=1),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
)

identities = sa.Table(
    "profile_identities",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("type", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(320), primary_key=True),
    sa.Column("profile_id", sa.String(36), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Index("ix_profile_identities_profile", "workspace", "profile_id"),
)

traits = sa.Table(
    "profile_traits",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("profile_id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.JSON, nullable=True),
    sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
)

events = sa.Table(
    "profile_events",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("profile_id", sa.String(36), nullable=False),
    sa.Column("type", sa.SmallInteger, nullable=False),
    sa.Column("event", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Index("ix_profile_events_profile_time", "workspace", "profile_id", "timestamp"),
)

request_log = request_log_table(metadata, "profile")


@dataclass(frozen=True)
class IncomingEvent:
    """What the store needs of an event (the servicer decodes the protobuf)."""

    workspace: str
    message_id: str
    type: int
    name: str
    timestamp: datetime
    identities: tuple[tuple[str, str], ...]
    traits: dict[str, Any]
    source: str
    payload: bytes


@dataclass(frozen=True)
class StoredProfile:
    workspace: str
    profile_id: str
    version: int
    created_at: datetime
    updated_at: datetime
    first_seen: datetime | None
    last_seen: datetime | None
    identities: tuple[tuple[str, str, str, datetime], ...]
    traits: dict[str, Any]


@dataclass(frozen=True)
class Applied:
    profile_id: str
    version: int
    changed_traits: dict[str, Any]
    merged_profile_ids: tuple[str, ...]
    duplicate: bool


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class ProfileStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def apply(self, event: IncomingEvent) -> Applied:
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            seen = conn.execute(
                sa.select(events.c.profile_id).where(
                    events.c.workspace == event.workspace,
                    events.c.message_id == event.message_id,
                )
            ).first()
            if seen is not None:
                return Applied(seen.profile_id, 0, {}, (), duplicate=True)
            profile_id, merged = self._resolve(conn, event, now)
            conn.execute(
                events.insert().values(
                    workspace=event.workspace,
                    message_id=event.message_id,
                    profile_id=profile_id,
                    type=event.type,
                    event=event.name,
                    timestamp=event.timestamp,
                    payload=event.payload,
                )
            )
            changed = self._write_traits(conn, event, profile_id)
            version = self._touch(conn, event, profile_id, now)
            return Applied(profile_id, version, changed, tuple(merged), duplicate=False)

    def _resolve(
        self, conn: sa.Connection, event: IncomingEvent, now: datetime
    ) -> tuple[str, list[str]]:
        """The profile the event's identities point to, merging profiles they join."""
        owners: list[str] = []
        for kind, value in event.identities:
            row = conn.execute(
                sa.select(identities.c.profile_id).where(
                    identities.c.workspace == event.workspace,
                    identities.c.type == kind,
                    identities.c.value == value,
                )
            ).first()
            if row is not None and row.profile_id not in owners:
                owners.append(row.profile_id)
        if not owners:
            profile_id = str(uuid.uuid4())
            conn.execute(
                profiles.insert().values(
                    workspace=event.workspace,
                    profile_id=profile_id,
                    version=0,
                    created_at=now,
                    updated_at=now,
                    first_seen=event.timestamp,
                    last_seen=event.timestamp,
                )
            )
        else:
            profile_id = self._oldest(conn, event.workspace, owners)
        merged = [p for p in owners if p != profile_id]
        for absorbed in merged:
            self._absorb(conn, event.workspace, profile_id, absorbed)
        for kind, value in event.identities:
            conn.execute(
                sa.delete(identities).where(
                    identities.c.workspace == event.workspace,
                    identities.c.type == kind,
                    identities.c.value == value,
                    identities.c.profile_id != profile_id,
                )
            )
            exists = conn.execute(
                sa.select(identities.c.profile_id).where(
                    identities.c.workspace == event.workspace,
                    identities.c.type == kind,
                    identities.c.value == value,
                )
            ).first()
            if exists is None:
                conn.execute(
                    identities.insert().values(
                        workspace=event.workspace,
                        type=kind,
                        value=value,
                        profile_id=profile_id,
                        source=event.source,
                        linked_at=event.timestamp,
                        message_id=event.message_id,
                    )
                )
        return profile_id, merged

    def _oldest(self, conn: sa.Connection, workspace: str, candidates: list[str]) -> str:
        rows = conn.execute(
            sa.select(profiles.c.profile_id)
            .where(profiles.c.workspace == workspace, profiles.c.profile_id.in_(candidates))
            .order_by(profiles.c.created_at, profiles.c.profile_id)
        ).all()
        return str(rows[0].profile_id)

    def _absorb(self, conn: sa.Connection, workspace: str, kept: str, absorbed: str) -> None:
        for table in (identities, events):
            conn.execute(
                table.update()
                .where(table.c.workspace == workspace, table.c.profile_id == absorbed)
                .values(profile_id=kept)
            )
        for row in conn.execute(
            sa.select(traits).where(
                traits.c.workspace == workspace, traits.c.profile_id == absorbed
            )
        ).all():
            self._put_trait(
                conn, workspace, kept, row.key, row.value, _utc(row.event_time), row.source
            )
        conn.execute(
            traits.delete().where(traits.c.workspace == workspace, traits.c.profile_id == absorbed)
        )
        conn.execute(
            profiles.delete().where(
                profiles.c.workspace == workspace, profiles.c.profile_id == absorbed
            )
        )

    def _put_trait(
        self,
        conn: sa.Connection,
        workspace: str,
        profile_id: str,
        key: str,
        value: Any,
        event_time: datetime | None,
        source: str,
    ) -> bool:
        current = conn.execute(
            sa.select(traits.c.value, traits.c.event_time).where(
                traits.c.workspace == workspace,
                traits.c.profile_id == profile_id,
                traits.c.key == key,
            )
        ).first()
        assert event_time is not None
        if current is None:
            conn.execute(
                traits.insert().values(
                    workspace=workspace,
                    profile_id=profile_id,
                    key=key,
                    value=value,
                    event_time=event_time,
                    source=source,
                )
            )
            return True
        held = _utc(current.event_time)
        if held is not None and held > event_time:
            return False
        conn.execute(
            traits.update()
            .where(
                traits.c.workspace == workspace,
                traits.c.profile_id == profile_id,
                traits.c.key == key,
            )
            .values(value=value, event_time=event_time, source=source)
        )
        return bool(json.dumps(current.value, sort_keys=True) != json.dumps(value, sort_keys=True))

    def _write_traits(
        self, conn: sa.Connection, event: IncomingEvent, profile_id: str
    ) -> dict[str, Any]:
        changed: dict[str, Any] = {}
        for key, value in event.traits.items():
            if self._put_trait(
                conn, event.workspace, profile_id, key, value, event.timestamp, event.source
            ):
                changed[key] = value
        return changed

    def _touch(
        self, conn: sa.Connection, event: IncomingEvent, profile_id: str, now: datetime
    ) -> int:
        row = conn.execute(
            sa.select(profiles.c.version, profiles.c.first_seen, profiles.c.last_seen).where(
                profiles.c.workspace == event.workspace, profiles.c.profile_id == profile_id
            )
        ).one()
        first_seen = min(filter(None, [_utc(row.first_seen), event.timestamp]))
        last_seen = max(filter(None, [_utc(row.last_seen), event.timestamp]))
        version = int(row.version) + 1
        conn.execute(
            profiles.update()
            .where(profiles.c.workspace == event.workspace, profiles.c.profile_id == profile_id)
            .values(version=version, updated_at=now, first_seen=first_seen, last_seen=last_seen)
        )
        return version

    def get(self, workspace: str, profile_id: str) -> StoredProfile | None:
        with self.db.reader.connect() as conn:
            row = conn.execute(
                sa.select(profiles).where(
                    profiles.c.workspace == workspace, profiles.c.profile_id == profile_id
                )
            ).first()
            if row is None:
                return None
            linked = conn.execute(
                sa.select(identities)
                .where(identities.c.workspace == workspace, identities.c.profile_id == profile_id)
                .order_by(identities.c.linked_at)
            ).all()
            held = conn.execute(
                sa.select(traits.c.key, traits.c.value).where(
                    traits.c.workspace == workspace, traits.c.profile_id == profile_id
                )
            ).all()
        return StoredProfile(
            workspace=workspace,
            profile_id=profile_id,
            version=int(row.version),
            created_at=_utc(row.created_at) or datetime.now(UTC),
            updated_at=_utc(row.updated_at) or datetime.now(UTC),
            first_seen=_utc(row.first_seen),
            last_seen=_utc(row.last_seen),
            identities=tuple(
                (i.type, i.value, i.source, _utc(i.linked_at) or datetime.now(UTC)) for i in linked
            ),
            traits={t.key: t.value for t in held},
        )

    def lookup(self, workspace: str, kind: str, value: str) -> str | None:
        with self.db.reader.connect() as conn:
            row = conn.execute(
                sa.select(identities.c.profile_id).where(
                    identities.c.workspace == workspace,
                    identities.c.type == kind,
                    identities.c.value == value,
                )
            ).first()
        return None if row is None else str(row.profile_id)

    def count_events(self, workspace: str, profile_id: str) -> int:
        with self.db.reader.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        events.c.workspace == workspace, events.c.profile_id == profile_id
                    )
                ).scalar_one()
            )


def identities_of(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Deduplicated (type, value) pairs in first-seen order, empty values dropped."""
    return tuple(dict.fromkeys((k, v) for k, v in pairs if v))
