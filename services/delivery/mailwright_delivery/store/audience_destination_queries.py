"""Audience destinations: which segments each one follows, for the API and for the
lookup of every membership transition."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from mailwright.errors import AlreadyExists, NotFound
from mailwright_delivery.audiences import Destination, DestinationState, SegmentMapping
from mailwright_delivery.store.base import must_aware
from mailwright_delivery.store.tables import (
    audience_destinations,
    audience_failures,
    audience_members,
    audience_pending,
    audience_segments,
    audience_status,
)

AUDIENCE_TABLES = (
    audience_segments,
    audience_pending,
    audience_members,
    audience_failures,
    audience_status,
)


def destination_record(row: Any) -> Destination:
    return Destination(
        workspace=row.workspace,
        id=row.id,
        display_name=row.display_name,
        connector=row.connector,
        connector_config=row.connector_config,
        segments=tuple(
            SegmentMapping(item["segment"], item["audience_name"])
            for item in json.loads(row.segments)
        ),
        traits=tuple(json.loads(row.traits)),
        state=DestinationState(row.state),
        created_at=must_aware(row.created_at),
        updated_at=must_aware(row.updated_at),
    )


def _destination_values(destination: Destination) -> dict[str, Any]:
    return {
        "display_name": destination.display_name,
        "connector": destination.connector,
        "connector_config": destination.connector_config,
        "segments": json.dumps(
            [
                {"segment": s.segment_id, "audience_name": s.audience_name}
                for s in destination.segments
            ]
        ),
        "traits": json.dumps(list(destination.traits)),
        "state": destination.state.value,
        "updated_at": destination.updated_at,
    }


class AudienceDestinationQueries:
    engine: sa.Engine
    reader: sa.Engine

    # -- destinations -----------------------------------------------------------------

    def create_destination(self, destination: Destination) -> Destination:
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(audience_destinations.c.id).where(
                    audience_destinations.c.workspace == destination.workspace,
                    audience_destinations.c.id == destination.id,
                )
            ).first()
            if exists is not None:
                raise AlreadyExists(f"audience destination {destination.id!r} already exists")
            conn.execute(
                audience_destinations.insert().values(
                    workspace=destination.workspace,
                    id=destination.id,
                    created_at=destination.created_at,
                    **_destination_values(destination),
                )
            )
            self._set_segments(conn, destination)
        return destination

    def get_destination(self, workspace: str, destination_id: str) -> Destination | None:
        with self.reader.connect() as conn:
            row = conn.execute(
                sa.select(audience_destinations).where(
                    audience_destinations.c.workspace == workspace,
                    audience_destinations.c.id == destination_id,
                )
            ).first()
        return destination_record(row) if row is not None else None

    def require_destination(self, workspace: str, destination_id: str) -> Destination:
        found = self.get_destination(workspace, destination_id)
        if found is None:
            raise NotFound(f"audience destination {destination_id!r} not found")
        return found

    def list_destinations(self, workspace: str, after: str, limit: int) -> list[Destination]:
        with self.reader.connect() as conn:
            rows = conn.execute(
                sa.select(audience_destinations)
                .where(
                    audience_destinations.c.workspace == workspace,
                    audience_destinations.c.id > after,
                )
                .order_by(audience_destinations.c.id)
                .limit(limit)
            ).all()
        return [destination_record(row) for row in rows]

    def update_destination(self, destination: Destination) -> Destination:
        """Saves the destination; the state of segments it no longer follows is dropped."""
        with self.engine.begin() as conn:
            updated = conn.execute(
                audience_destinations.update()
                .where(
                    audience_destinations.c.workspace == destination.workspace,
                    audience_destinations.c.id == destination.id,
                )
                .values(**_destination_values(destination))
            ).rowcount
            if not updated:
                raise NotFound(f"audience destination {destination.id!r} not found")
            kept = [s.segment_id for s in destination.segments]
            for table in AUDIENCE_TABLES:
                conn.execute(
                    table.delete().where(
                        table.c.workspace == destination.workspace,
                        table.c.destination_id == destination.id,
                        table.c.segment_id.not_in(kept),
                    )
                )
            self._set_segments(conn, destination)
        return destination

    def delete_destination(self, workspace: str, destination_id: str) -> bool:
        with self.engine.begin() as conn:
            deleted = conn.execute(
                audience_destinations.delete().where(
                    audience_destinations.c.workspace == workspace,
                    audience_destinations.c.id == destination_id,
                )
            ).rowcount
            for table in AUDIENCE_TABLES:
                conn.execute(
                    table.delete().where(
                        table.c.workspace == workspace, table.c.destination_id == destination_id
                    )
                )
        return bool(deleted)

    def _set_segments(self, conn: sa.Connection, destination: Destination) -> None:
        conn.execute(
            audience_segments.delete().where(
                audience_segments.c.workspace == destination.workspace,
                audience_segments.c.destination_id == destination.id,
            )
        )
        conn.execute(
            audience_segments.insert(),
            [
                {
                    "workspace": destination.workspace,
                    "segment_id": mapping.segment_id,
                    "destination_id": destination.id,
                }
                for mapping in destination.segments
            ],
        )

    def destinations_following(self, workspace: str, segment_id: str) -> list[str]:
        with self.reader.connect() as conn:
            rows = conn.execute(
                sa.select(audience_segments.c.destination_id).where(
                    audience_segments.c.workspace == workspace,
                    audience_segments.c.segment_id == segment_id,
                )
            ).all()
        return [row[0] for row in rows]
