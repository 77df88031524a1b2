"""Segment definitions and their versions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mailwright.errors import AlreadyExists
from mailwright_segment.store.projection import is_postgres, upsert
from mailwright_segment.store.tables import memberships, segments, timers, versions, workspaces


@dataclass(frozen=True)
class SegmentRow:
    pk: int
    ws: str
    segment_id: str
    display_name: str
    description: str
    tags: tuple[str, ...]
    version: int
    rule_text: str
    rule: bytes
    warnings: str
    created_at: int
    updated_at: int


def _row(row: Any) -> SegmentRow:
    return SegmentRow(
        row.pk,
        row.ws,
        row.segment_id,
        row.display_name,
        row.description,
        tuple(json.loads(row.tags)),
        row.version,
        row.rule_text,
        bytes(row.rule),
        row.warnings,
        row.created_at,
        row.updated_at,
    )


def insert_segment(conn: sa.Connection, row: SegmentRow) -> int:
    """Save a new segment at version 1; AlreadyExists when the id is taken."""
    inserted = conn.execute(
        upsert(conn, segments)
        .values(
            ws=row.ws,
            segment_id=row.segment_id,
            display_name=row.display_name,
            description=row.description,
            tags=json.dumps(list(row.tags)),
            version=1,
            rule_text=row.rule_text,
            rule=row.rule,
            warnings=row.warnings,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        .on_conflict_do_nothing()
        .returning(segments.c.pk)
    ).scalar()
    if inserted is None:
        raise AlreadyExists(f'segment "{row.segment_id}" already exists')
    pk = int(inserted)
    _add_version(conn, pk, 1, row.rule_text, row.rule, row.warnings, row.created_at)
    return pk


def _add_version(
    conn: sa.Connection, pk: int, version: int, text: str, rule: bytes, warnings: str, now: int
) -> None:
    conn.execute(
        versions.insert().values(
            segment_pk=pk,
            version=version,
            rule_text=text,
            rule=rule,
            warnings=warnings,
            created_at=now,
        )
    )


def get_segment(
    conn: sa.Connection, ws: str, segment_id: str, *, lock: bool = False
) -> SegmentRow | None:
    query = sa.select(segments).where(segments.c.ws == ws, segments.c.segment_id == segment_id)
    if lock and is_postgres(conn):
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _row(row)


def get_segment_by_pk(conn: sa.Connection, pk: int) -> SegmentRow | None:
    row = conn.execute(sa.select(segments).where(segments.c.pk == pk)).first()
    return None if row is None else _row(row)


def get_version(conn: sa.Connection, pk: int, version: int) -> tuple[str, bytes, str, int] | None:
    row = conn.execute(
        sa.select(
            versions.c.rule_text, versions.c.rule, versions.c.warnings, versions.c.created_at
        ).where(versions.c.segment_pk == pk, versions.c.version == version)
    ).first()
    return None if row is None else (row.rule_text, bytes(row.rule), row.warnings, row.created_at)


def list_segments(conn: sa.Connection, ws: str, after: str, limit: int) -> list[SegmentRow]:
    rows = conn.execute(
        sa.select(segments)
        .where(segments.c.ws == ws, segments.c.segment_id > after)
        .order_by(segments.c.segment_id)
        .limit(limit)
    )
    return [_row(r) for r in rows]


def all_segments(conn: sa.Connection, ws: str) -> list[SegmentRow]:
    rows = conn.execute(
        sa.select(segments).where(segments.c.ws == ws).order_by(segments.c.segment_id)
    )
    return [_row(r) for r in rows]


def update_segment(
    conn: sa.Connection, current: SegmentRow, changed: SegmentRow, now: int
) -> SegmentRow:
    """Write the changed fields; a new rule makes a new version."""
    new_rule = changed.rule != current.rule
    version = current.version + 1 if new_rule else current.version
    conn.execute(
        segments.update()
        .where(segments.c.pk == current.pk)
        .values(
            display_name=changed.display_name,
            description=changed.description,
            tags=json.dumps(list(changed.tags)),
            version=version,
            rule_text=changed.rule_text,
            rule=changed.rule,
            warnings=changed.warnings,
            updated_at=now,
        )
    )
    if new_rule:
        _add_version(
            conn, current.pk, version, changed.rule_text, changed.rule, changed.warnings, now
        )
    updated = get_segment_by_pk(conn, current.pk)
    assert updated is not None
    return updated


def delete_segment(conn: sa.Connection, pk: int) -> None:
    conn.execute(timers.delete().where(timers.c.segment_pk == pk))
    conn.execute(memberships.delete().where(memberships.c.segment_pk == pk))
    conn.execute(versions.delete().where(versions.c.segment_pk == pk))
    conn.execute(segments.delete().where(segments.c.pk == pk))


def bump_epoch(conn: sa.Connection, ws: str) -> None:
    conn.execute(upsert(conn, workspaces).values(ws=ws).on_conflict_do_nothing())
    conn.execute(
        workspaces.update()
        .where(workspaces.c.ws == ws)
        .values(segments_epoch=workspaces.c.segments_epoch + 1)
    )


def segment_ids(conn: sa.Connection, ws: str) -> list[str]:
    return list(conn.execute(sa.select(segments.c.segment_id).where(segments.c.ws == ws)).scalars())


def member_counts(conn: sa.Connection, pks: Sequence[int]) -> dict[int, int]:
    if not pks:
        return {}
    rows = conn.execute(
        sa.select(memberships.c.segment_pk, sa.func.count())
        .where(memberships.c.segment_pk.in_(pks), memberships.c.member.is_(True))
        .group_by(memberships.c.segment_pk)
    )
    return {int(pk): int(n) for pk, n in rows}
