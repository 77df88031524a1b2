"""Reading profiles: by id, by identity, lists with filters, history, schema, policy."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from mailwright_profile.filters import Comparison
from mailwright_profile.identity import Identity
from mailwright_profile.normalizers import parse_timestamp
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t
from mailwright_profile.views import CandidateView, EventRow, ProfileView

ORDERS = {
    "update_time desc": ("updated_at", True),
    "update_time": ("updated_at", False),
    "create_time desc": ("created_at", True),
    "create_time": ("created_at", False),
    "last_seen_time desc": ("last_seen", True),
    "last_seen_time": ("last_seen", False),
}
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TIME_COLUMNS = {
    "create_time": "created_at",
    "update_time": "updated_at",
    "first_seen_time": "first_seen",
    "last_seen_time": "last_seen",
}


@dataclass(frozen=True)
class ProfileRow:
    """What a filter needs of a profile, and its position in the list."""

    profile_id: str
    sort_value: datetime | None
    traits: dict[str, Any]
    times: dict[str, datetime | None]


def get_profile(conn: sa.Connection, workspace: str, profile_id: str) -> ProfileView | None:
    root = r.root_of(conn, workspace, profile_id)
    return None if root is None else r.profile_view(conn, workspace, root)


def lookup(conn: sa.Connection, workspace: str, identity: Identity) -> str | None:
    row = conn.execute(
        sa.select(t.identities.c.profile_id).where(
            t.identities.c.workspace == workspace,
            t.identities.c.type == identity.type,
            t.identities.c.value == identity.value,
        )
    ).first()
    return None if row is None else str(row.profile_id)


def _trait_test(dialect: str, comparison: Comparison) -> ColumnElement[bool]:
    """The database's form of a plain-trait comparison, with the value's JSON type checked
    so that no row of another type is cast (PostgreSQL would fail on it)."""
    column = t.profiles.c.traits
    key, op, value = comparison.key, comparison.op, comparison.value
    path = f'$."{key}"'
    if dialect == "postgresql":
        typeof = sa.func.jsonb_typeof(column[key])
        if isinstance(value, bool):
            kind, held = "boolean", column[key].as_boolean()
        elif isinstance(value, int | float):
            kind, held = "number", column[key].as_float()
        else:
            kind, held = "string", column[key].as_string()
        kind_test: ColumnElement[bool] = typeof == kind
    else:
        typeof = sa.func.json_type(column, path)
        held = sa.func.json_extract(column, path)
        if isinstance(value, bool):
            kind_test = (
                typeof == ("true" if value else "false")
                if op == "="
                else typeof.in_(["true", "false"])
            )
            value = 1 if value else 0
        elif isinstance(value, int | float):
            kind_test = typeof.in_(["integer", "real"])
        else:
            kind_test = typeof == "text"
    compare: ColumnElement[bool] = _OPERATORS[op](held, value)
    return sa.and_(kind_test, compare)


def _condition(dialect: str, comparison: Comparison) -> ColumnElement[bool]:
    if comparison.scope == "time":
        column = t.profiles.c[_TIME_COLUMNS[comparison.key]]
        moment = parse_timestamp(comparison.value)
        test: ColumnElement[bool] = _OPERATORS[comparison.op](column, moment)
        return test
    return _trait_test(dialect, comparison)


def list_profiles(
    conn: sa.Connection,
    workspace: str,
    order_by: str,
    pushed: Sequence[Comparison],
    after: tuple[datetime | None, str] | None,
    limit: int,
) -> list[ProfileRow]:
    """Live profiles in list order after a position, the pushed-down filters applied."""
    column_name, descending = ORDERS[order_by]
    column = t.profiles.c[column_name]
    pid = t.profiles.c.profile_id
    # Absent times (last_seen of a profile never seen) sort as the epoch.
    floor = sa.literal(datetime(1970, 1, 1), type_=t.Moment)
    sort = sa.func.coalesce(column, floor)
    query = sa.select(
        pid,
        column.label("sort_value"),
        t.profiles.c.traits,
        t.profiles.c.created_at,
        t.profiles.c.updated_at,
        t.profiles.c.first_seen,
        t.profiles.c.last_seen,
    ).where(t.profiles.c.workspace == workspace, t.profiles.c.merged_into.is_(None))
    for comparison in pushed:
        query = query.where(_condition(conn.dialect.name, comparison))
    if after is not None:
        value = after[0] if after[0] is not None else datetime(1970, 1, 1)
        if descending:
            query = query.where(sa.or_(sort < value, sa.and_(sort == value, pid < after[1])))
        else:
            query = query.where(sa.or_(sort > value, sa.and_(sort == value, pid > after[1])))
    query = query.order_by(sort.desc(), pid.desc()) if descending else query.order_by(sort, pid)
    rows = conn.execute(query.limit(limit)).all()
    return [
        ProfileRow(
            profile_id=row.profile_id,
            sort_value=r.utc_or_none(row.sort_value),
            traits=dict(row.traits or {}),
            times={
                "create_time": r.utc(row.created_at),
                "update_time": r.utc(row.updated_at),
                "first_seen_time": r.utc_or_none(row.first_seen),
                "last_seen_time": r.utc_or_none(row.last_seen),
            },
        )
        for row in rows
    ]


def list_events(
    conn: sa.Connection,
    workspace: str,
    profile_id: str,
    names: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[EventRow]:
    """A profile's history, newest first, from a position on."""
    e = t.events
    query = sa.select(
        e.c.occurred_at, e.c.message_id, e.c.profile_id, e.c.home_id, e.c.payload
    ).where(e.c.workspace == workspace, e.c.profile_id == profile_id)
    if names:
        query = query.where(e.c.name.in_(list(names)))
    if start is not None:
        query = query.where(e.c.occurred_at >= start)
    if end is not None:
        query = query.where(e.c.occurred_at < end)
    if after is not None:
        query = query.where(
            sa.or_(
                e.c.occurred_at < after[0],
                sa.and_(e.c.occurred_at == after[0], e.c.message_id < after[1]),
            )
        )
    query = query.order_by(e.c.occurred_at.desc(), e.c.message_id.desc()).limit(limit)
    return [
        EventRow(r.utc(row.occurred_at), row.message_id, row.profile_id, row.home_id, row.payload)
        for row in conn.execute(query)
    ]


def trait_keys(conn: sa.Connection, workspace: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        sa.select(t.trait_keys.c.key, t.trait_keys.c.type)
        .where(t.trait_keys.c.workspace == workspace)
        .order_by(t.trait_keys.c.key)
    )
    return [(row.key, row.type) for row in rows]


def list_candidates(
    conn: sa.Connection, workspace: str, after: tuple[datetime, str, str] | None, limit: int
) -> tuple[list[CandidateView], tuple[datetime, str, str] | None, bool]:
    """Open merge candidates, newest first, from a position on; pairs since merged or
    erased are skipped. Returns them, the position after the last row read, and whether
    rows may remain."""
    c = t.merge_candidates
    found: list[CandidateView] = []
    position = after
    more = False
    while len(found) < limit:
        query = sa.select(c).where(c.c.workspace == workspace)
        if position is not None:
            moment, left, right = position
            query = query.where(
                sa.or_(
                    c.c.created_at < moment,
                    sa.and_(
                        c.c.created_at == moment,
                        sa.tuple_(c.c.left_id, c.c.right_id) < sa.tuple_(left, right),
                    ),
                )
            )
        rows = conn.execute(
            query.order_by(c.c.created_at.desc(), c.c.left_id.desc(), c.c.right_id.desc()).limit(
                limit
            )
        ).all()
        if not rows:
            break
        roots = r.roots_of(
            conn, workspace, {i for row in rows for i in (row.left_id, row.right_id)}
        )
        for row in rows:
            position = (r.utc(row.created_at), row.left_id, row.right_id)
            left_root = roots.get(row.left_id)
            right_root = roots.get(row.right_id)
            if left_root is None or right_root is None or left_root == right_root:
                continue
            found.append(
                CandidateView(
                    left_root,
                    right_root,
                    float(row.score),
                    tuple(row.evidence),
                    r.utc(row.created_at),
                )
            )
            if len(found) >= limit:
                more = True
                break
        if len(rows) < limit:
            break
        more = True
    return found, position, more
