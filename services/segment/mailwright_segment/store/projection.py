"""Writing and reading the projection of one person.

Every function takes the caller's connection (inside its transaction): the engine applies a
change, evaluates and records memberships in one transaction while it holds the person's
row lock, so two replicas never interleave their work on one person.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mailwright.rules import ast
from mailwright.rules.person import EmailSend, Event, Person
from mailwright.rules.reference import as_instant
from mailwright_segment.facts import EmailFact, EventFact, email_fact
from mailwright_segment.specs import Spec, specs_of
from mailwright_segment.state import DayBucket, PersonState, Send
from mailwright_segment.store import direct
from mailwright_segment.store.tables import (
    NAME,
    buckets,
    email_actions,
    events,
    hits,
    memberships,
    observed,
    profiles,
    segments,
    sends,
    specs,
    timers,
    trait_items,
    traits,
    workspaces,
)
from mailwright_segment.values import (
    MICROS_PER_DAY,
    Value,
    day_of,
    dumps,
    from_micros,
    kind_of,
    loads,
    to_micros,
)

ACTION_KINDS = {"open": "o", "click": "c", "machine_open": "m"}
_EVENTS_PER_INSERT = 500
"""Rows of one multi-row INSERT of events (6 parameters each)."""


def upsert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT that knows ON CONFLICT."""
    return insert_of(conn.dialect.name, table)


def insert_of(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgres(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


_PREPARED: dict[tuple[str, str], Any] = {}


def prepared(conn: sa.Connection, name: str, build: Callable[[str], Any]) -> Any:
    """The statement `name` for the connection's dialect, built once per process.

    The hot path (one change after another) executes the same few statements with bound
    parameters: building each anew would spend more time in constructing expressions and
    their cache keys than in the database."""
    key = (conn.dialect.name, name)
    statement = _PREPARED.get(key)
    if statement is None:
        statement = _PREPARED[key] = build(conn.dialect.name)
    return statement


# ---------------------------------------------------------------------------------------
# Workspaces and profiles


@dataclass(frozen=True)
class WorkspaceRow:
    ws: str
    pruned_before: int | None
    segments_epoch: int


def workspace(conn: sa.Connection, ws: str, *, exclusive: bool = False) -> WorkspaceRow:
    """The workspace's row, created on first use, locked in share mode (or exclusively, to
    fill a new spec while no change is being applied)."""
    create = prepared(
        conn,
        "workspace.create",
        lambda d: insert_of(d, workspaces).values(ws=sa.bindparam("ws")).on_conflict_do_nothing(),
    )
    conn.execute(create, {"ws": ws})

    def build(dialect: str) -> Any:
        query = sa.select(workspaces).where(workspaces.c.ws == sa.bindparam("ws"))
        if dialect == "postgresql":
            query = query.with_for_update(read=not exclusive)
        return query

    row = conn.execute(prepared(conn, f"workspace.lock.{exclusive}", build), {"ws": ws}).one()
    return WorkspaceRow(row.ws, row.pruned_before, row.segments_epoch)


def pruned_before(conn: sa.Connection, ws: str) -> int | None:
    """Since when the workspace's hits are complete (None: nothing pruned)."""
    value = conn.execute(
        sa.select(workspaces.c.pruned_before).where(workspaces.c.ws == ws)
    ).scalar()
    return None if value is None else int(value)


def profile_pk(conn: sa.Connection, ws: str, profile_id: str, now: int) -> int:
    """The person's key, the row created if new and locked for this transaction."""
    direct.execute(
        conn,
        f"INSERT INTO {profiles.name} (ws, profile_id, version, updated_at) VALUES (?, ?, 0, ?)"
        " ON CONFLICT DO NOTHING",
        (ws, profile_id, now),
    )
    return lock_profile(conn, ws, profile_id) or 0


def profile_key(conn: sa.Connection, ws: str, profile_id: str) -> int | None:
    """The person's key (no lock), or None when the projection does not know them."""
    pk: int | None = conn.execute(
        sa.select(profiles.c.pk).where(profiles.c.ws == ws, profiles.c.profile_id == profile_id)
    ).scalar()
    return pk


def lock_profile(conn: sa.Connection, ws: str, profile_id: str) -> int | None:
    found = lock_profile_row(conn, ws, profile_id)
    return None if found is None else found[0]


def lock_profile_row(conn: sa.Connection, ws: str, profile_id: str) -> tuple[int, int] | None:
    """The person's key and stored version, their row locked; None when unknown."""
    lock = " FOR UPDATE" if is_postgres(conn) else ""
    rows = direct.execute(
        conn,
        f"SELECT pk, version FROM {profiles.name} WHERE ws = ? AND profile_id = ?{lock}",
        (ws, profile_id),
    )
    return (int(rows[0][0]), int(rows[0][1] or 0)) if rows else None


def lock_profiles(conn: sa.Connection, pks: Sequence[int]) -> None:
    """Lock several people's rows, in key order (so that lockers never deadlock)."""
    if is_postgres(conn) and pks:
        conn.execute(
            sa.select(profiles.c.pk)
            .where(profiles.c.pk.in_(sorted(pks)))
            .order_by(profiles.c.pk)
            .with_for_update()
        ).all()


def profile_version(conn: sa.Connection, pk: int) -> int:
    return int(conn.execute(sa.select(profiles.c.version).where(profiles.c.pk == pk)).scalar() or 0)


def touch_profile(conn: sa.Connection, pk: int, version: int | None, now: int) -> None:
    if version is None:
        conn.execute(profiles.update().where(profiles.c.pk == pk).values(updated_at=now))
        return
    direct.execute(
        conn,
        f"UPDATE {profiles.name} SET updated_at = ?, version = ? WHERE pk = ?",
        (now, version, pk),
    )


def profile_id_of(conn: sa.Connection, pk: int) -> str | None:
    found: str | None = conn.execute(
        sa.select(profiles.c.profile_id).where(profiles.c.pk == pk)
    ).scalar()
    return found


# ---------------------------------------------------------------------------------------
# Traits


_TRAIT_COLUMNS = '(pk, "key", ws, kind, text, number, flag, instant, value)'
_ITEM_COLUMNS = '(pk, "key", "position", ws, kind, text, number, flag)'


def _trait_row(
    ws: str, pk: int, key: str, value: Value, number: Callable[[Decimal | None], Any]
) -> tuple[Any, ...]:
    """A `traits` row in `_TRAIT_COLUMNS` order."""
    instant = as_instant(value) if isinstance(value, str) else None
    return (
        pk,
        key,
        ws,
        kind_of(value),
        value if isinstance(value, str) else None,
        number(value) if isinstance(value, Decimal) else None,
        value if isinstance(value, bool) else None,
        None if instant is None else to_micros(instant),
        dumps(value),
    )


def _item_rows(
    ws: str, pk: int, key: str, items: list[Value], number: Callable[[Decimal | None], Any]
) -> list[tuple[Any, ...]]:
    """`trait_items` rows in `_ITEM_COLUMNS` order."""
    return [
        (
            pk,
            key,
            i,
            ws,
            kind_of(item) if item is not None else "z",
            item if isinstance(item, str) else None,
            number(item) if isinstance(item, Decimal) else None,
            item if isinstance(item, bool) else None,
        )
        for i, item in enumerate(items)
    ]


def set_traits(
    conn: sa.Connection, ws: str, pk: int, values: Mapping[str, Value], removed: Iterable[str]
) -> None:
    """Set the given traits (a None value removes) and remove `removed`."""
    keys = [k for k in {*values, *removed} if len(k) <= NAME]
    if not keys:
        return
    listed = direct.marks(len(keys))
    for table in (traits, trait_items):
        direct.execute(
            conn, f'DELETE FROM {table.name} WHERE pk = ? AND "key" IN ({listed})', (pk, *keys)
        )
    number = direct.number_of(conn)
    rows, items = [], []
    for key in keys:
        value = values.get(key)
        if value is None:
            continue
        rows.append(_trait_row(ws, pk, key, value, number))
        if isinstance(value, list):
            items.extend(_item_rows(ws, pk, key, value, number))
    direct.execute_many(
        conn, f"INSERT INTO {traits.name} {_TRAIT_COLUMNS} VALUES ({direct.marks(9)})", rows
    )
    direct.execute_many(
        conn, f"INSERT INTO {trait_items.name} {_ITEM_COLUMNS} VALUES ({direct.marks(8)})", items
    )


def trait_kind(value: Value) -> str:
    """The observed type of a trait value (dates are ISO 8601 strings)."""
    if isinstance(value, str) and len(value) >= 10 and as_instant(value) is not None:
        return "date"
    return {"s": "string", "n": "number", "b": "boolean", "l": "list", "o": "object"}[
        kind_of(value)
    ]


def observe(conn: sa.Connection, ws: str, rows: Iterable[tuple[str, str, str]]) -> None:
    """Record (event or "" for traits, key, type) as seen."""
    values = [(ws, e, k, t) for e, k, t in dict.fromkeys(rows) if len(e) <= NAME and len(k) <= NAME]
    direct.execute_many(
        conn,
        f'INSERT INTO {observed.name} (ws, event, "key", kind) VALUES (?, ?, ?, ?)'
        " ON CONFLICT DO NOTHING",
        values,
    )


def observed_types(conn: sa.Connection, ws: str) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        sa.select(observed.c.event, observed.c.key, observed.c.kind).where(observed.c.ws == ws)
    )
    return [(r.event, r.key, r.kind) for r in rows]


# ---------------------------------------------------------------------------------------
# Specs


def specs_for_events(conn: sa.Connection, ws: str, names: Iterable[str]) -> dict[str, list[Spec]]:
    """The materialised specs of these event names (implicit ones created when missing)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    query = prepared(
        conn,
        "specs.of_events",
        lambda _: sa.select(specs.c.event, specs.c.filters, specs.c.measure, specs.c.per).where(
            specs.c.ws == sa.bindparam("ws"),
            specs.c.event.in_(sa.bindparam("names", expanding=True)),
        ),
    )
    rows = conn.execute(query, {"ws": ws, "names": wanted}).all()
    found: dict[str, list[Spec]] = defaultdict(list)
    for row in rows:
        found[row.event].append(cached_spec(row.event, row.filters, row.measure, row.per))
    missing = [n for n in wanted if not any(s.implicit for s in found.get(n, []))]
    if missing:
        conn.execute(
            upsert(conn, specs)
            .values(
                [
                    {
                        "ws": ws,
                        "spec_id": Spec(n).id,
                        "event": n,
                        "filters": "",
                        "measure": None,
                        "per": None,
                        "implicit": True,
                        "used_at": 0,
                    }
                    for n in missing
                ]
            )
            .on_conflict_do_nothing()
        )
        for name in missing:
            found[name].append(Spec(name))
    return dict(found)


_SPEC_CACHE: dict[tuple[str, str, str | None, str | None], Spec] = {}


def cached_spec(event: str, filters: str, measure: str | None, per: str | None) -> Spec:
    """Specs are immutable by content: parse each stored one once per process."""
    key = (event, filters, measure, per)
    spec = _SPEC_CACHE.get(key)
    if spec is None:
        if len(_SPEC_CACHE) > 10_000:
            _SPEC_CACHE.clear()
        spec = _SPEC_CACHE[key] = Spec.stored(event, filters, measure, per)
    return spec


# ---------------------------------------------------------------------------------------
# Events, hits and buckets


@dataclass
class _Bucket:
    count: int = 0
    n: int = 0
    total: Decimal = Decimal(0)
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def add(
        self, count: int, n: int, total: Decimal, low: Decimal | None, high: Decimal | None
    ) -> None:
        self.count += count
        self.n += n
        self.total += total
        if low is not None and (self.minimum is None or low < self.minimum):
            self.minimum = low
        if high is not None and (self.maximum is None or high > self.maximum):
            self.maximum = high


def add_events(
    conn: sa.Connection,
    ws: str,
    pk: int,
    facts: Sequence[EventFact],
    by_event: Mapping[str, list[Spec]],
) -> list[EventFact]:
    """Record new events (ones already held are skipped) with their hits and buckets;
    returns the events that were new."""
    unique = list({f.message_id: f for f in facts}.values())
    if not unique:
        return []
    fresh_ids: set[str] = set()
    for low in range(0, len(unique), _EVENTS_PER_INSERT):
        chunk = unique[low : low + _EVENTS_PER_INSERT]
        values = [
            v
            for f in chunk
            for v in (ws, f.message_id, pk, f.name, f.at, dumps(dict(f.properties)))
        ]
        inserted = direct.execute(
            conn,
            f'INSERT INTO {events.name} (ws, message_id, pk, name, "at", properties)'
            f" VALUES {direct.rows_of(6, len(chunk))}"
            " ON CONFLICT DO NOTHING RETURNING message_id",
            values,
        )
        fresh_ids.update(row[0] for row in inserted)
    fresh = [f for f in unique if f.message_id in fresh_ids]
    add_hits(conn, ws, pk, fresh, by_event)
    return fresh


def add_hits(
    conn: sa.Connection,
    ws: str,
    pk: int,
    facts: Sequence[EventFact],
    by_event: Mapping[str, list[Spec]],
    only: Spec | None = None,
) -> None:
    rows: list[tuple[Any, ...]] = []
    grouped: dict[tuple[str, int], _Bucket] = defaultdict(_Bucket)
    stored = direct.number_of(conn)
    for fact in facts:
        candidates = [only] if only is not None else by_event.get(fact.name, [])
        for spec in candidates:
            if not spec.matches(fact.name, fact.properties):
                continue
            number, group = spec.hit(fact.properties)
            rows.append((ws, spec.id, pk, fact.at, fact.message_id, stored(number), group))
            grouped[(spec.id, day_of(fact.at))].add(
                1, int(number is not None), number or Decimal(0), number, number
            )
    direct.execute_many(
        conn,
        f'INSERT INTO {hits.name} (ws, spec_id, pk, "at", message_id, number, grp)'
        f" VALUES ({direct.marks(7)})",
        rows,
    )
    _add_to_buckets(conn, ws, pk, grouped)


def _add_to_buckets(
    conn: sa.Connection, ws: str, pk: int, grouped: Mapping[tuple[str, int], _Bucket]
) -> None:
    if not grouped:
        return
    spec_ids = sorted({s for s, _ in grouped})
    days = sorted({d for _, d in grouped})
    existing = direct.execute(
        conn,
        f'SELECT spec_id, "day", "count", n, total, minimum, maximum FROM {buckets.name}'
        f" WHERE ws = ? AND pk = ? AND spec_id IN ({direct.marks(len(spec_ids))})"
        f' AND "day" IN ({direct.marks(len(days))})',
        (ws, pk, *spec_ids, *days),
    )
    merged: dict[tuple[str, int], _Bucket] = {}
    for spec_id, day, count, n, total, minimum, maximum in existing:
        key = (spec_id, day)
        if key in grouped:
            merged[key] = _Bucket(
                count,
                n,
                direct.decimal_of(total) or Decimal(0),
                direct.decimal_of(minimum),
                direct.decimal_of(maximum),
            )
    for key, delta in grouped.items():
        bucket = merged.setdefault(key, _Bucket())
        bucket.add(delta.count, delta.n, delta.total, delta.minimum, delta.maximum)
    _write_buckets(conn, ws, pk, merged)


def _write_buckets(
    conn: sa.Connection, ws: str, pk: int, values: Mapping[tuple[str, int], _Bucket]
) -> None:
    number = direct.number_of(conn)
    direct.execute_many(
        conn,
        f'INSERT INTO {buckets.name} (ws, spec_id, pk, "day", "count", n, total, minimum, maximum)'
        f" VALUES ({direct.marks(9)})"
        ' ON CONFLICT (ws, spec_id, pk, "day") DO UPDATE SET "count" = excluded."count",'
        " n = excluded.n, total = excluded.total, minimum = excluded.minimum,"
        " maximum = excluded.maximum",
        [
            (
                ws,
                spec_id,
                pk,
                day,
                b.count,
                b.n,
                number(b.total),
                number(b.minimum),
                number(b.maximum),
            )
            for (spec_id, day), b in values.items()
        ],
    )


def ensure_specs(
    conn: sa.Connection, ws: str, wanted: Iterable[Spec], now: int, since: int | None
) -> list[Spec]:
    """Materialise the specs not yet held, filled from the event log (hold the workspace
    exclusively: no change may be applied meanwhile); returns the new ones."""
    by_id = {s.id: s for s in wanted}
    if not by_id:
        return []
    held = set(
        conn.execute(
            sa.select(specs.c.spec_id).where(specs.c.ws == ws, specs.c.spec_id.in_(by_id))
        ).scalars()
    )
    new = [s for i, s in by_id.items() if i not in held]
    if new:
        conn.execute(
            specs.insert(),
            [
                {
                    "ws": ws,
                    "spec_id": s.id,
                    "event": s.event,
                    "filters": s.filter_text,
                    "measure": s.measure,
                    "per": s.per,
                    "implicit": s.implicit,
                    "used_at": now,
                }
                for s in new
            ],
        )
        for spec in new:
            fill_spec(conn, ws, spec, since)
    conn.execute(
        specs.update().where(specs.c.ws == ws, specs.c.spec_id.in_(by_id)).values(used_at=now)
    )
    return new


def fill_spec(conn: sa.Connection, ws: str, spec: Spec, since: int | None) -> int:
    """Fill a new spec's hits and buckets from the event log; returns the hits written."""
    query = sa.select(
        events.c.pk, events.c.message_id, events.c.name, events.c.at, events.c.properties
    ).where(events.c.ws == ws, events.c.name == spec.event)
    if since is not None:
        query = query.where(events.c.at >= since)
    by_profile: dict[int, list[EventFact]] = defaultdict(list)
    written = 0
    for row in conn.execute(query.order_by(events.c.pk)):
        props = loads(row.properties)
        assert isinstance(props, dict)
        by_profile[row.pk].append(EventFact(row.message_id, row.name, row.at, props))
        if len(by_profile) >= 500:
            written += _fill(conn, ws, spec, by_profile)
    return written + _fill(conn, ws, spec, by_profile)


def _fill(conn: sa.Connection, ws: str, spec: Spec, pending: dict[int, list[EventFact]]) -> int:
    count = 0
    for pk, facts in pending.items():
        add_hits(conn, ws, pk, facts, {}, only=spec)
        count += len(facts)
    pending.clear()
    return count


# ---------------------------------------------------------------------------------------
# Email engagement


def add_emails(conn: sa.Connection, ws: str, pk: int, facts: Sequence[EmailFact]) -> None:
    """Record email facts (of new events only: the caller deduplicates by event)."""
    if not facts:
        return
    direct.execute_many(
        conn,
        f'INSERT INTO {email_actions.name} (ws, message_id, pk, send_id, kind, "at")'
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [
            (ws, f.message_id, pk, f.send_id, ACTION_KINDS[f.kind], f.at)
            for f in facts
            if f.kind != "sent"
        ],
    )
    touched = sorted({f.send_id for f in facts})
    current: dict[str, list[int | None]] = {
        send_id: [sent_at, first_open, first_click]
        for send_id, sent_at, first_open, first_click in direct.execute(
            conn,
            f"SELECT send_id, sent_at, first_open, first_click FROM {sends.name}"
            f" WHERE ws = ? AND pk = ? AND send_id IN ({direct.marks(len(touched))})",
            (ws, pk, *touched),
        )
    }
    for fact in facts:
        slot = {"sent": 0, "open": 1, "click": 2}.get(fact.kind)
        values = current.setdefault(fact.send_id, [None, None, None])
        if slot is None:
            continue
        earliest = values[slot]
        if earliest is None or fact.at < earliest:
            values[slot] = fact.at
    _write_sends(conn, ws, pk, current)


def _write_sends(
    conn: sa.Connection, ws: str, pk: int, values: Mapping[str, list[int | None]]
) -> None:
    direct.execute_many(
        conn,
        f"INSERT INTO {sends.name} (ws, pk, send_id, sent_at, first_open, first_click)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ws, pk, send_id) DO UPDATE SET"
        " sent_at = excluded.sent_at, first_open = excluded.first_open,"
        " first_click = excluded.first_click",
        [(ws, pk, s, v[0], v[1], v[2]) for s, v in values.items()],
    )


# ---------------------------------------------------------------------------------------
# Merges, unmerges, erasure


def move_profile(conn: sa.Connection, ws: str, absorbed: int, kept: int) -> None:
    """Everything the projection holds of `absorbed` now belongs to `kept`."""
    for table in (events, hits, email_actions):
        conn.execute(table.update().where(table.c.ws == ws, table.c.pk == absorbed).values(pk=kept))
    grouped: dict[tuple[str, int], _Bucket] = {}
    for row in conn.execute(sa.select(buckets).where(buckets.c.ws == ws, buckets.c.pk == absorbed)):
        grouped[(row.spec_id, row.day)] = _Bucket(
            row._mapping["count"], row.n, row.total, row.minimum, row.maximum
        )
    conn.execute(buckets.delete().where(buckets.c.ws == ws, buckets.c.pk == absorbed))
    _add_to_buckets(conn, ws, kept, grouped)
    moved = {
        row.send_id: [row.sent_at, row.first_open, row.first_click]
        for row in conn.execute(sa.select(sends).where(sends.c.ws == ws, sends.c.pk == absorbed))
    }
    conn.execute(sends.delete().where(sends.c.ws == ws, sends.c.pk == absorbed))
    if moved:
        current = {
            row.send_id: [row.sent_at, row.first_open, row.first_click]
            for row in conn.execute(
                sa.select(sends).where(
                    sends.c.ws == ws, sends.c.pk == kept, sends.c.send_id.in_(moved)
                )
            )
        }
        for send_id, values in moved.items():
            mine = current.setdefault(send_id, [None, None, None])
            for i, value in enumerate(values):
                if value is not None and (mine[i] is None or value < mine[i]):
                    mine[i] = value
        _write_sends(conn, ws, kept, current)
    erase_profile(conn, ws, absorbed)


def take_events(conn: sa.Connection, ws: str, message_ids: Sequence[str], to_pk: int) -> set[int]:
    """Move held events (an unmerge restores them to their profile); returns the profiles
    they were taken from."""
    if not message_ids:
        return set()
    found = conn.execute(
        sa.select(events.c.pk).where(
            events.c.ws == ws, events.c.message_id.in_(message_ids), events.c.pk != to_pk
        )
    ).scalars()
    sources = set(found)
    if not sources:
        return set()
    for table in (events, hits, email_actions):
        conn.execute(
            table.update()
            .where(table.c.ws == ws, table.c.message_id.in_(message_ids))
            .values(pk=to_pk)
        )
    return sources


def rebuild_derived(conn: sa.Connection, ws: str, pk: int, coverage: int | None) -> None:
    """Recompute the person's day buckets (for the days its hits cover) and email sends
    from the hits, actions and email events held."""
    first_day = None if coverage is None else coverage // MICROS_PER_DAY
    condition = sa.and_(buckets.c.ws == ws, buckets.c.pk == pk)
    if first_day is not None:
        condition = sa.and_(condition, buckets.c.day >= first_day)
    conn.execute(buckets.delete().where(condition))
    grouped: dict[tuple[str, int], _Bucket] = defaultdict(_Bucket)
    for row in conn.execute(
        sa.select(hits.c.spec_id, hits.c.at, hits.c.number).where(hits.c.ws == ws, hits.c.pk == pk)
    ):
        number = row.number
        grouped[(row.spec_id, day_of(row.at))].add(
            1, int(number is not None), number or Decimal(0), number, number
        )
    _add_to_buckets(conn, ws, pk, grouped)
    conn.execute(sends.delete().where(sends.c.ws == ws, sends.c.pk == pk))
    facts: list[EmailFact] = []
    email_events = conn.execute(
        sa.select(events.c.message_id, events.c.name, events.c.at, events.c.properties).where(
            events.c.ws == ws, events.c.pk == pk, events.c.name.like("Email %")
        )
    )
    for email_row in email_events:
        props = loads(email_row.properties)
        assert isinstance(props, dict)
        fact = email_fact(EventFact(email_row.message_id, email_row.name, email_row.at, props))
        if fact is not None:
            facts.append(fact)
    conn.execute(email_actions.delete().where(email_actions.c.ws == ws, email_actions.c.pk == pk))
    add_emails(conn, ws, pk, facts)


def erase_profile(conn: sa.Connection, ws: str, pk: int) -> None:
    """Delete everything of the person from the projection (memberships included)."""
    for table in (events, hits, buckets, sends, email_actions):
        conn.execute(table.delete().where(table.c.ws == ws, table.c.pk == pk))
    for table in (traits, trait_items):
        conn.execute(table.delete().where(table.c.pk == pk))
    conn.execute(memberships.delete().where(memberships.c.profile_pk == pk))
    conn.execute(timers.delete().where(timers.c.profile_pk == pk))
    conn.execute(profiles.delete().where(profiles.c.pk == pk))


# ---------------------------------------------------------------------------------------
# Reading one person


def load_traits(conn: sa.Connection, pk: int) -> dict[str, Value]:
    query = prepared(
        conn,
        "traits.of",
        lambda _: sa.select(traits.c.key, traits.c.value).where(traits.c.pk == sa.bindparam("key")),
    )
    return {row.key: loads(row.value) for row in conn.execute(query, {"key": pk})}


def member_of(conn: sa.Connection, pk: int) -> set[str]:
    query = prepared(
        conn,
        "memberships.of",
        lambda _: (
            sa.select(segments.c.segment_id)
            .select_from(memberships.join(segments, segments.c.pk == memberships.c.segment_pk))
            .where(memberships.c.profile_pk == sa.bindparam("key"), memberships.c.member.is_(True))
        ),
    )
    return {row.segment_id for row in conn.execute(query, {"key": pk})}


def load_state(
    conn: sa.Connection,
    ws: str,
    pk: int,
    spec_ids: Iterable[str],
    *,
    emails: bool,
    coverage: int | None,
) -> PersonState:
    """The person's projection for the given specs (and email history when asked)."""
    state = PersonState(
        traits=load_traits(conn, pk), segments=member_of(conn, pk), coverage=coverage
    )
    wanted = sorted(set(spec_ids))
    if wanted:
        query = prepared(
            conn,
            "hits.of",
            lambda _: (
                sa.select(hits.c.spec_id, hits.c.at, hits.c.number, hits.c.grp)
                .where(
                    hits.c.ws == sa.bindparam("ws"),
                    hits.c.pk == sa.bindparam("key"),
                    hits.c.spec_id.in_(sa.bindparam("spec_ids", expanding=True)),
                )
                .order_by(hits.c.spec_id, hits.c.at)
            ),
        )
        rows = conn.execute(query, {"ws": ws, "key": pk, "spec_ids": wanted})
        for row in rows:
            found = state.spec(row.spec_id).hits
            found.times.append(row.at)
            found.numbers.append(row.number)
            found.groups.append(row.grp)
        if coverage is not None:
            day_query = prepared(
                conn,
                "buckets.before",
                lambda _: (
                    sa.select(buckets)
                    .where(
                        buckets.c.ws == sa.bindparam("ws"),
                        buckets.c.pk == sa.bindparam("key"),
                        buckets.c.spec_id.in_(sa.bindparam("spec_ids", expanding=True)),
                        buckets.c.day < sa.bindparam("day"),
                    )
                    .order_by(buckets.c.spec_id, buckets.c.day)
                ),
            )
            day_rows = conn.execute(
                day_query,
                {"ws": ws, "key": pk, "spec_ids": wanted, "day": coverage // MICROS_PER_DAY},
            )
            for row in day_rows:
                data = state.spec(row.spec_id)
                data.days.append(row.day)
                data.buckets.append(
                    DayBucket(
                        row.day, row._mapping["count"], row.n, row.total, row.minimum, row.maximum
                    )
                )
    if emails:
        state.sends = load_sends(conn, ws, pk)
    return state


def profile_count(conn: sa.Connection, ws: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(profiles.c.ws == ws)).scalar() or 0)


def next_slice(conn: sa.Connection, ws: str, after: int, size: int) -> list[tuple[int, str]]:
    """The next `size` people of the workspace after key `after`: (key, profile id)."""
    rows = conn.execute(
        sa.select(profiles.c.pk, profiles.c.profile_id)
        .where(profiles.c.ws == ws, profiles.c.pk > after)
        .order_by(profiles.c.pk)
        .limit(size)
    )
    return [(int(r.pk), r.profile_id) for r in rows]


def workspace_names(conn: sa.Connection) -> list[str]:
    return list(conn.execute(sa.select(workspaces.c.ws).order_by(workspaces.c.ws)).scalars())


def prune_before(conn: sa.Connection, ws: str, cutoff: int) -> int:
    """Delete the events, hits and email actions before `cutoff` (a UTC midnight); the
    day buckets stay. Returns the rows deleted."""
    deleted = 0
    for table in (events, hits, email_actions):
        result = conn.execute(table.delete().where(table.c.ws == ws, table.c.at < cutoff))
        deleted += result.rowcount or 0
    conn.execute(
        workspaces.update()
        .where(
            workspaces.c.ws == ws,
            sa.or_(workspaces.c.pruned_before.is_(None), workspaces.c.pruned_before < cutoff),
        )
        .values(pruned_before=cutoff)
    )
    return deleted


def drop_unused_specs(
    conn: sa.Connection, ws: str, rules: Iterable[ast.Rule], unused_since: int
) -> int:
    """Delete the specs no rule reads (implicit ones aside) unused since `unused_since`."""
    wanted = {s.id for rule in rules for s in specs_of(rule)}
    stale = [
        spec_id
        for spec_id in conn.execute(
            sa.select(specs.c.spec_id).where(
                specs.c.ws == ws, specs.c.implicit.is_(False), specs.c.used_at < unused_since
            )
        ).scalars()
        if spec_id not in wanted
    ]
    deleted = 0
    for table in (hits, buckets, specs):
        result = conn.execute(table.delete().where(table.c.ws == ws, table.c.spec_id.in_(stale)))
        deleted += result.rowcount or 0
    return deleted


def load_states(
    conn: sa.Connection,
    ws: str,
    pks: Sequence[int],
    spec_ids: Iterable[str],
    *,
    emails: bool,
    coverage: int | None,
    trait_keys: Collection[str] | None = None,
) -> dict[int, PersonState]:
    """The projections of a slice of people (keys `pks`, in order), read in bulk; only
    the traits `trait_keys` when given (the ones a rule reads)."""
    if not pks:
        return {}
    low, high = pks[0], pks[-1]
    states = {pk: PersonState(coverage=coverage) for pk in pks}
    row: Any
    if trait_keys is None or trait_keys:
        query = sa.select(traits.c.pk, traits.c.key, traits.c.value).where(
            traits.c.ws == ws, traits.c.pk.between(low, high)
        )
        if trait_keys is not None:
            query = query.where(traits.c.key.in_(sorted(trait_keys)))
        for row in conn.execute(query):
            if row.pk in states:
                states[row.pk].traits[row.key] = loads(row.value)
    for row in conn.execute(
        sa.select(memberships.c.profile_pk, segments.c.segment_id)
        .select_from(memberships.join(segments, segments.c.pk == memberships.c.segment_pk))
        .where(
            segments.c.ws == ws,
            memberships.c.member.is_(True),
            memberships.c.profile_pk.between(low, high),
        )
    ):
        if row.profile_pk in states:
            states[row.profile_pk].segments.add(row.segment_id)
    wanted = sorted(set(spec_ids))
    if wanted:
        rows = conn.execute(
            sa.select(hits.c.pk, hits.c.spec_id, hits.c.at, hits.c.number, hits.c.grp)
            .where(hits.c.ws == ws, hits.c.spec_id.in_(wanted), hits.c.pk.between(low, high))
            .order_by(hits.c.pk, hits.c.spec_id, hits.c.at)
        )
        for row in rows:
            state = states.get(row.pk)
            if state is not None:
                found = state.spec(row.spec_id).hits
                found.times.append(row.at)
                found.numbers.append(row.number)
                found.groups.append(row.grp)
        if coverage is not None:
            for row in conn.execute(
                sa.select(buckets)
                .where(
                    buckets.c.ws == ws,
                    buckets.c.spec_id.in_(wanted),
                    buckets.c.pk.between(low, high),
                    buckets.c.day < coverage // MICROS_PER_DAY,
                )
                .order_by(buckets.c.pk, buckets.c.spec_id, buckets.c.day)
            ):
                state = states.get(row.pk)
                if state is not None:
                    data = state.spec(row.spec_id)
                    data.days.append(row.day)
                    data.buckets.append(
                        DayBucket(
                            row.day,
                            row._mapping["count"],
                            row.n,
                            row.total,
                            row.minimum,
                            row.maximum,
                        )
                    )
    if emails:
        for pk, person_sends in sends_in(conn, ws, low, high).items():
            if pk in states:
                states[pk].sends = person_sends
    return states


def load_sends(conn: sa.Connection, ws: str, pk: int) -> list[Send]:
    return sends_in(conn, ws, pk, pk).get(pk, [])


def sends_in(conn: sa.Connection, ws: str, low: int, high: int) -> dict[int, list[Send]]:
    """The known sends (with their human opens and clicks) of the people in a key range."""
    known: dict[tuple[int, str], Send] = {}
    row: Any
    for row in conn.execute(
        sa.select(
            sends.c.pk, sends.c.send_id, sends.c.sent_at, sends.c.first_open, sends.c.first_click
        ).where(sends.c.ws == ws, sends.c.pk.between(low, high), sends.c.sent_at.is_not(None))
    ):
        known[(row.pk, row.send_id)] = Send(
            row.send_id, row.sent_at, first_open=row.first_open, first_click=row.first_click
        )
    if known:
        # By key range alone, in (pk, at) order: the (pk, at) index answers it. With `ws`
        # in the filter and `at` alone as the order, SQLite (no statistics) walked the
        # (ws, at) or (ws, message_id) index through every action of the workspace instead,
        # for each person: 20 ms a call at 27,000 actions, most of the demo's time after
        # its campaign. A key belongs to one workspace, and only the sends of `ws` found
        # above take an action, so the rows used are the same.
        rows = conn.execute(
            sa.select(
                email_actions.c.pk,
                email_actions.c.send_id,
                email_actions.c.kind,
                email_actions.c.at,
            )
            .where(
                email_actions.c.pk.between(low, high),
                email_actions.c.kind.in_(["o", "c"]),
            )
            .order_by(email_actions.c.pk, email_actions.c.at)
        )
        for row in rows:
            send = known.get((row.pk, row.send_id))
            if send is not None:
                (send.opens if row.kind == "o" else send.clicks).append(row.at)
    out: dict[int, list[Send]] = defaultdict(list)
    for (pk, _), send in known.items():
        out[pk].append(send)
    for found in out.values():
        found.sort(key=lambda s: (s.sent_at, s.send_id))
    return dict(out)


def load_person(conn: sa.Connection, ws: str, pk: int) -> Person:
    """The person as the reference evaluator reads it (the event log, not the buckets)."""
    history = tuple(
        Event(row.name, from_micros(row.at), loads(row.properties))  # type: ignore[arg-type]
        for row in conn.execute(
            sa.select(events.c.name, events.c.at, events.c.properties)
            .where(events.c.ws == ws, events.c.pk == pk)
            .order_by(events.c.at, events.c.message_id)
        )
    )
    machine: dict[str, list[int]] = defaultdict(list)
    for row in conn.execute(
        sa.select(email_actions.c.send_id, email_actions.c.at).where(
            email_actions.c.ws == ws, email_actions.c.pk == pk, email_actions.c.kind == "m"
        )
    ):
        machine[row.send_id].append(row.at)
    emails = tuple(
        EmailSend(
            s.send_id,
            from_micros(s.sent_at),
            tuple(from_micros(t) for t in s.opens),
            tuple(from_micros(t) for t in s.clicks),
            tuple(from_micros(t) for t in sorted(machine.get(s.send_id, []))),
        )
        for s in load_sends(conn, ws, pk)
    )
    return Person(load_traits(conn, pk), history, emails, frozenset(member_of(conn, pk)))
