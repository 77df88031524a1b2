"""Rows to domain objects and back, and the small queries every part of the store shares."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from mailwright_profile.computed.aggregates import Aggregates
from mailwright_profile.consent import ConsentBook
from mailwright_profile.identity import DEFAULT_POLICY, Identity, MergePolicy
from mailwright_profile.profile_state import ProfileState
from mailwright_profile.store import tables as t
from mailwright_profile.traits import TraitBook
from mailwright_profile.views import IdentityLink, MergeReason, MergeView, ProfileView

T = TypeVar("T")
CHUNK = 250
# Keys in one SQLite `IN` list of `keyed_selects`: under the 999 parameters older SQLite
# versions allow a statement (with room for the fixed columns), so that a batch of
# 10,000 events looks its ids up in a dozen statements rather than forty.
SQLITE_KEYS = 900


def utc(value: datetime) -> datetime:
    """Datetimes come back naive from SQLite; everything inside is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def keyed_selects(
    conn: sa.Connection,
    query: sa.Select[Any],
    columns: Sequence[sa.ColumnElement[Any]],
    keys: Iterable[tuple[Any, ...]],
) -> Iterator[sa.Select[Any]]:
    """`query` restricted to the rows whose `columns` equal one of `keys`, as few
    statements as the backend allows.

    PostgreSQL gets one statement joined to the keys as a table: an `IN` list of
    separate parameters is compared element by element against every row the planner
    visits, which on a freshly filled table (statistics not gathered yet) is the whole
    workspace — quadratic work for a batch. Text keys come as one JSON parameter
    (`_json_keys`), others as `unnest` of one array parameter per column. SQLite gets, for text
    keys, one `IN` of `json_each` of a JSON array parameter (one statement whatever the
    number of keys, the same for SQLAlchemy's statement cache, no parameter per key to
    render and process: a batch's lookups take less than half the time); for other keys
    `IN` lists of up to `SQLITE_KEYS` keys.
    """
    wanted = sorted(set(keys))
    if not wanted:
        return
    if conn.dialect.name == "postgresql":
        names = [f"k{i}" for i in range(len(columns))]
        if all(type(value) is str for key in wanted for value in key):
            keyed = _json_keys(wanted, names)
            yield query.join(keyed, _joined(columns, names, keyed))
            return
        arrays = [
            sa.bindparam(
                f"keys_{name}",
                [key[i] for key in wanted],
                type_=postgresql.ARRAY(column.type),
            )
            for i, (name, column) in enumerate(zip(names, columns, strict=True))
        ]
        table = (
            sa.func.unnest(*arrays)
            .table_valued(*names)
            .render_derived(name="wanted", with_types=False)
        )
        yield query.join(table, _joined(columns, names, table))
        return
    # SQLite searches an index with `IN` only on its last equality column (a row-value
    # `IN` is scanned): keys that share all but their last column go in one statement.
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for key in wanted:
        groups.setdefault(key[:-1], []).append(key[-1])
    for prefix, lasts in groups.items():
        fixed = [column == value for column, value in zip(columns, prefix, strict=False)]
        if all(type(value) is str for value in lasts):
            yield query.where(*fixed, columns[-1].in_(_json_values(lasts)))
            continue
        for chunk in chunks(lasts, SQLITE_KEYS):
            yield query.where(*fixed, columns[-1].in_(chunk))


def _json_keys(keys: list[tuple[Any, ...]], names: list[str]) -> sa.Subquery:
    """`wanted(k0, k1, …)`: text keys read from one JSON array of arrays (PostgreSQL).
    psycopg dumps an array parameter element by element in Python — for a batch's
    10,000 message ids, a tenth of the batch apply's own time — where one JSON text is
    made in C and taken apart by the server."""
    text = sa.bindparam("keyed_json", json.dumps(keys), type_=sa.Text)
    element = (
        sa.func.json_array_elements(sa.cast(text, postgresql.JSON))
        .table_valued("value")
        .render_derived(name="element")
    )
    return sa.select(
        *(
            element.c.value.op("->>")(sa.literal_column(str(i))).label(n)
            for i, n in enumerate(names)
        )
    ).subquery("wanted")


def _joined(
    columns: Sequence[sa.ColumnElement[Any]], names: list[str], table: Any
) -> sa.ColumnElement[bool]:
    """Each of `columns` equal to the column of `table` named in `names` at its place."""
    return sa.and_(*(column == table.c[name] for name, column in zip(names, columns, strict=True)))


def _json_values(values: list[str]) -> sa.Select[Any]:
    """`SELECT value FROM json_each(:keyed_values)` of the values as a JSON array (SQLite
    matches them as it matches an `IN` list: through the column's index, in key order)."""
    array = sa.bindparam("keyed_values", json.dumps(values), type_=sa.String)
    return sa.select(sa.literal_column("value")).select_from(sa.func.json_each(array))


@contextmanager
def custom_plans(conn: sa.Connection) -> Iterator[None]:
    """Plan the statements run inside for their parameters (PostgreSQL).

    psycopg prepares a statement after a few executions, and the server may then settle
    on a generic plan that cannot see how many keys an array parameter holds, nor use
    fresh statistics of a table filling up: for `keyed_selects` that plan can be a
    nested loop over the whole workspace. Only the lookups are planned each time: the
    batch's writes keep their prepared plans (re-planning each row of an executemany
    costs more than the lookups gain).
    """
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    yield
    if postgres:
        conn.exec_driver_sql("SET LOCAL plan_cache_mode TO DEFAULT")


def state_from_row(row: Any) -> ProfileState:
    return ProfileState(
        workspace=row.workspace,
        profile_id=row.profile_id,
        created_at=utc(row.created_at),
        version=int(row.version),
        first_seen=utc_or_none(row.first_seen),
        last_seen=utc_or_none(row.last_seen),
        traits=TraitBook(row.traits or {}, row.trait_meta or {}),
        aggregates=Aggregates.from_json(row.aggregates),
        consents=ConsentBook(row.consents or {}),
        computed=dict(row.computed or {}),
        evaluated_at=utc(row.updated_at),
    )


def state_values(state: ProfileState, now: datetime, refresh_at: datetime | None) -> dict[str, Any]:
    """The columns of a profile row that its projections fill."""
    return {
        "version": state.version,
        "updated_at": now,
        "first_seen": state.first_seen,
        "last_seen": state.last_seen,
        "traits": state.traits.values,
        "trait_meta": state.traits.meta_json(),
        "computed": state.computed,
        "aggregates": state.aggregates.to_json(),
        "consents": state.consents.to_json(),
        "refresh_at": refresh_at,
    }


def new_profile_row(state: ProfileState, now: datetime) -> dict[str, Any]:
    return {
        "workspace": state.workspace,
        "profile_id": state.profile_id,
        "root_id": state.profile_id,
        "merged_into": None,
        "created_at": state.created_at,
        **state_values(state, now, None),
    }


def load_states(
    conn: sa.Connection, workspace: str, profile_ids: Iterable[str], lock: bool = True
) -> dict[str, ProfileState]:
    """Root profiles by id, locked for update on PostgreSQL (in id order)."""
    found: dict[str, ProfileState] = {}
    query = (
        sa.select(t.profiles)
        .where(t.profiles.c.workspace == workspace)
        .order_by(t.profiles.c.profile_id)
    )
    if lock:
        query = query.with_for_update(of=t.profiles)
    keys = [(p,) for p in profile_ids]
    for statement in keyed_selects(conn, query, [t.profiles.c.profile_id], keys):
        for row in conn.execute(statement):
            found[row.profile_id] = state_from_row(row)
    return found


def lock_versions(
    conn: sa.Connection, workspace: str, profile_ids: Iterable[str]
) -> dict[str, tuple[int, bool]]:
    """Profiles by id: (version, whether it is a live root), their rows locked for update
    on PostgreSQL (in id order), as `load_states` locks them."""
    p = t.profiles
    query = (
        sa.select(p.c.profile_id, p.c.version, p.c.merged_into)
        .where(p.c.workspace == workspace)
        .order_by(p.c.profile_id)
        .with_for_update(of=p)
    )
    found: dict[str, tuple[int, bool]] = {}
    keys = [(i,) for i in profile_ids]
    for statement in keyed_selects(conn, query, [p.c.profile_id], keys):
        for row in conn.execute(statement):
            found[row.profile_id] = (int(row.version), row.merged_into is None)
    return found


def root_of(conn: sa.Connection, workspace: str, profile_id: str) -> str | None:
    """The live profile an id belongs to (itself, or the one it was merged into)."""
    row = conn.execute(
        sa.select(t.profiles.c.root_id).where(
            t.profiles.c.workspace == workspace, t.profiles.c.profile_id == profile_id
        )
    ).first()
    return None if row is None else str(row.root_id)


def roots_of(conn: sa.Connection, workspace: str, profile_ids: Iterable[str]) -> dict[str, str]:
    """`root_of` of many ids at once (ids that name no profile are absent)."""
    p = t.profiles.c
    query = sa.select(p.profile_id, p.root_id).where(p.workspace == workspace)
    found: dict[str, str] = {}
    for statement in keyed_selects(conn, query, [p.profile_id], [(i,) for i in profile_ids]):
        for row in conn.execute(statement):
            found[str(row.profile_id)] = str(row.root_id)
    return found


def members(conn: sa.Connection, workspace: str, root: str) -> list[tuple[str, str | None]]:
    """(profile, merged_into) of every profile in a root's tree, the root included."""
    rows = conn.execute(
        sa.select(t.profiles.c.profile_id, t.profiles.c.merged_into).where(
            t.profiles.c.workspace == workspace, t.profiles.c.root_id == root
        )
    ).all()
    return [(str(r.profile_id), r.merged_into) for r in rows]


def load_policy(conn: sa.Connection, workspace: str) -> MergePolicy:
    row = conn.execute(sa.select(t.policies).where(t.policies.c.workspace == workspace)).first()
    if row is None:
        return DEFAULT_POLICY
    return MergePolicy(
        unique_identity_types=tuple(row.unique_identity_types),
        source_priority=tuple(row.source_priority),
        auto_merge_threshold=float(row.auto_merge_threshold),
        review_threshold=float(row.review_threshold),
    )


def identity_links(conn: sa.Connection, workspace: str, profile_id: str) -> list[IdentityLink]:
    rows = conn.execute(
        sa.select(t.identities)
        .where(t.identities.c.workspace == workspace, t.identities.c.profile_id == profile_id)
        .order_by(t.identities.c.linked_at, t.identities.c.type, t.identities.c.value)
    ).all()
    return [link_from_row(row) for row in rows]


def link_from_row(row: Any) -> IdentityLink:
    return IdentityLink(
        identity=Identity(row.type, row.value),
        profile_id=row.profile_id,
        home_id=row.home_id,
        source=row.source,
        linked_at=utc(row.linked_at),
        message_id=row.message_id,
    )


def _view_columns() -> list[sa.Column[Any]]:
    """The columns a `ProfileView` is made of (not `computed`, which it evaluates again
    at the time of reading, nor the refresh schedule)."""
    c = t.profiles.c
    return [
        c.profile_id,
        c.version,
        c.created_at,
        c.updated_at,
        c.first_seen,
        c.last_seen,
        c.traits,
        c.trait_meta,
        c.aggregates,
        c.consents,
        c.scores,
    ]


def _view_of(
    workspace: str, row: Any, links: Sequence[IdentityLink], merged: Iterable[str]
) -> ProfileView:
    return ProfileView(
        workspace=workspace,
        profile_id=str(row.profile_id),
        version=int(row.version),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        first_seen=utc_or_none(row.first_seen),
        last_seen=utc_or_none(row.last_seen),
        identities=tuple(links),
        traits=dict(row.traits or {}),
        trait_meta=dict(row.trait_meta or {}),
        aggregates=Aggregates.from_json(row.aggregates),
        consents=dict(row.consents or {}),
        merged_profiles=tuple(sorted(merged)),
        scores=dict(row.scores or {}),
    )


def profile_view(conn: sa.Connection, workspace: str, profile_id: str) -> ProfileView | None:
    """A live profile and everything it holds; None when there is no such root."""
    row = conn.execute(
        sa.select(*_view_columns()).where(
            t.profiles.c.workspace == workspace,
            t.profiles.c.profile_id == profile_id,
            t.profiles.c.merged_into.is_(None),
        )
    ).first()
    if row is None:
        return None
    merged = [p for p, parent in members(conn, workspace, profile_id) if parent is not None]
    return _view_of(workspace, row, identity_links(conn, workspace, profile_id), merged)


def merge_from_row(row: Any) -> MergeView:
    return MergeView(
        workspace=row.workspace,
        merge_id=row.merge_id,
        kept_id=row.kept_id,
        absorbed_id=row.absorbed_id,
        reason=MergeReason(int(row.reason)),
        shared=tuple(Identity(k, v) for k, v in row.shared),
        evidence=tuple(row.evidence),
        score=float(row.score),
        message_id=row.message_id,
        actor=row.actor,
        created_at=utc(row.created_at),
        unmerged_at=utc_or_none(row.unmerged_at),
    )


def merge_row(view: MergeView) -> dict[str, Any]:
    return {
        "workspace": view.workspace,
        "merge_id": view.merge_id,
        "kept_id": view.kept_id,
        "absorbed_id": view.absorbed_id,
        "reason": int(view.reason),
        "shared": [[i.type, i.value] for i in view.shared],
        "evidence": [dict(e) for e in view.evidence],
        "score": view.score,
        "message_id": view.message_id,
        "actor": view.actor,
        "created_at": view.created_at,
        "unmerged_at": None,
        "unmerged_by": None,
    }


def unique_values(
    conn: sa.Connection, workspace: str, profile_id: str, kinds: Sequence[str]
) -> dict[str, set[str]]:
    if not kinds:
        return {}
    found: dict[str, set[str]] = {}
    rows = conn.execute(
        sa.select(t.identities.c.type, t.identities.c.value).where(
            t.identities.c.workspace == workspace,
            t.identities.c.profile_id == profile_id,
            t.identities.c.type.in_(list(kinds)),
        )
    )
    for row in rows:
        found.setdefault(row.type, set()).add(row.value)
    return found


def unique_values_of(
    conn: sa.Connection, workspace: str, profile_ids: Sequence[str], kinds: Sequence[str]
) -> dict[str, dict[str, set[str]]]:
    """`unique_values` of many profiles at once."""
    found: dict[str, dict[str, set[str]]] = {}
    if not kinds:
        return found
    query = sa.select(t.identities.c.profile_id, t.identities.c.type, t.identities.c.value).where(
        t.identities.c.workspace == workspace, t.identities.c.type.in_(list(kinds))
    )
    keys = [(p,) for p in profile_ids]
    for statement in keyed_selects(conn, query, [t.identities.c.profile_id], keys):
        for row in conn.execute(statement):
            found.setdefault(row.profile_id, {}).setdefault(row.type, set()).add(row.value)
    return found


def any_unmerged(conn: sa.Connection, workspace: str) -> bool:
    """Whether a person ever unmerged profiles in the workspace (a partial index holds
    the unmerged merges: this reads none of the others)."""
    query = (
        sa.select(sa.literal(1))
        .where(t.merges.c.workspace == workspace, t.merges.c.unmerged_at.is_not(None))
        .limit(1)
    )
    return conn.execute(query).first() is not None


def separated(conn: sa.Connection, workspace: str, first: str, second: str) -> bool:
    """Whether an unmerge once split a profile of one tree from a profile of the other."""
    left = {p for p, _ in members(conn, workspace, first)}
    right = {p for p, _ in members(conn, workspace, second)}
    rows = conn.execute(
        sa.select(t.merges.c.kept_id, t.merges.c.absorbed_id).where(
            t.merges.c.workspace == workspace,
            t.merges.c.unmerged_at.is_not(None),
            sa.or_(
                t.merges.c.kept_id.in_(sorted(left | right)),
                t.merges.c.absorbed_id.in_(sorted(left | right)),
            ),
        )
    ).all()
    return any(
        (r.kept_id in left and r.absorbed_id in right)
        or (r.kept_id in right and r.absorbed_id in left)
        for r in rows
    )


def move_rows(conn: sa.Connection, workspace: str, absorbed: str, kept: str) -> None:
    """Everything a merged-away profile's tree holds now belongs to `kept`."""
    for table in (t.identities, t.events):
        conn.execute(
            table.update()
            .where(table.c.workspace == workspace, table.c.profile_id == absorbed)
            .values(profile_id=kept)
        )
    conn.execute(
        t.profiles.update()
        .where(t.profiles.c.workspace == workspace, t.profiles.c.root_id == absorbed)
        .values(root_id=kept)
    )
    conn.execute(
        t.match_keys.delete().where(
            t.match_keys.c.workspace == workspace, t.match_keys.c.profile_id == absorbed
        )
    )


def trait_sources(meta: Mapping[str, Sequence[str]]) -> set[str]:
    return {str(entry[1]) for entry in meta.values()}


READ_CHUNK = 500
"""Ids per `IN (...)` list when reading many profiles at once."""


def profile_views(
    conn: sa.Connection, workspace: str, profile_ids: Sequence[str]
) -> dict[str, ProfileView]:
    """`profile_view` of many ids at once, keyed by the id asked for (a merged-away id
    maps to the profile it belongs to); ids that hold nothing are absent. Four queries a
    chunk of ids, whatever their number: what a batch read (`BatchGetProfiles`) needs."""
    found: dict[str, ProfileView] = {}
    wanted = list(dict.fromkeys(profile_ids))
    for start in range(0, len(wanted), READ_CHUNK):
        found.update(_profile_views_chunk(conn, workspace, wanted[start : start + READ_CHUNK]))
    return found


def _profile_views_chunk(
    conn: sa.Connection, workspace: str, ids: Sequence[str]
) -> dict[str, ProfileView]:
    profiles, identities = t.profiles, t.identities
    root_of_id = {
        str(row.profile_id): str(row.root_id)
        for row in conn.execute(
            sa.select(profiles.c.profile_id, profiles.c.root_id).where(
                profiles.c.workspace == workspace, profiles.c.profile_id.in_(ids)
            )
        )
    }
    roots = sorted(set(root_of_id.values()))
    if not roots:
        return {}
    live = {
        str(row.profile_id): row
        for row in conn.execute(
            sa.select(*_view_columns()).where(
                profiles.c.workspace == workspace,
                profiles.c.profile_id.in_(roots),
                profiles.c.merged_into.is_(None),
            )
        )
    }
    merged: dict[str, list[str]] = {}
    for row in conn.execute(
        sa.select(profiles.c.profile_id, profiles.c.root_id).where(
            profiles.c.workspace == workspace,
            profiles.c.root_id.in_(roots),
            profiles.c.merged_into.is_not(None),
        )
    ):
        merged.setdefault(str(row.root_id), []).append(str(row.profile_id))
    links: dict[str, list[IdentityLink]] = {}
    for row in conn.execute(
        sa.select(identities)
        .where(identities.c.workspace == workspace, identities.c.profile_id.in_(roots))
        .order_by(identities.c.linked_at, identities.c.type, identities.c.value)
    ):
        links.setdefault(str(row.profile_id), []).append(link_from_row(row))
    views = {
        root: _view_of(workspace, row, links.get(root, ()), merged.get(root, ()))
        for root, row in live.items()
    }
    return {asked: views[root] for asked, root in root_of_id.items() if root in views}
