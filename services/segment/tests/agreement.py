"""Shared by the agreement tests: seed people into a projection, ask all three evaluators.

Not a test module itself (its name does not start with `test_`); the tests import it by
path through `conftest.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from mailwright.rules import ast, evaluate, tree
from mailwright.rules.person import Person
from mailwright_segment import persons
from mailwright_segment.incremental import compile_rule
from mailwright_segment.specs import specs_of
from mailwright_segment.store import projection
from mailwright_segment.store.compile import Scope, members_query
from mailwright_segment.store.tables import memberships, segments
from mailwright_segment.values import MICROSECOND, to_micros

SEGMENT_IDS = ("loyal-buyers", "inactive", "vip")


def create_segments(conn: sa.Connection, ws: str, ids: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for segment_id in ids:
        result = conn.execute(
            segments.insert().values(
                ws=ws,
                segment_id=segment_id,
                display_name=segment_id,
                description="",
                tags="[]",
                version=1,
                rule_text="",
                rule=b"",
                warnings="[]",
                created_at=0,
                updated_at=0,
            )
        )
        assert result.inserted_primary_key is not None
        found[segment_id] = int(result.inserted_primary_key[0])
    return found


def seed(engine: sa.Engine, ws: str, people: Sequence[Person], rule: ast.Rule) -> list[int]:
    """Bring the people into the projection: half their events before the rule's specs
    exist (so the specs are filled from the event log), half after (live hits)."""
    changes = [persons.change_of(p, ws, f"p{i}") for i, p in enumerate(people)]
    keys: list[int] = []
    with engine.begin() as conn:
        projection.workspace(conn, ws)
        segment_pks = create_segments(conn, ws, SEGMENT_IDS)
        for change, person in zip(changes, people, strict=True):
            pk = projection.profile_pk(conn, ws, change.profile_id, 0)
            keys.append(pk)
            projection.set_traits(conn, ws, pk, change.traits, ())
            early = change.events[: len(change.events) // 2]
            by_event = projection.specs_for_events(conn, ws, {e.name for e in early})
            projection.add_events(conn, ws, pk, early, by_event)
            for segment_id in person.segments:
                conn.execute(
                    memberships.insert().values(
                        segment_pk=segment_pks[segment_id],
                        profile_pk=pk,
                        member=True,
                        entered_at=0,
                        rule_version=1,
                    )
                )
    with engine.begin() as conn:
        projection.workspace(conn, ws, exclusive=True)
        projection.ensure_specs(conn, ws, specs_of(rule), 0, None)
    with engine.begin() as conn:
        projection.workspace(conn, ws)
        for change, pk in zip(changes, keys, strict=True):
            late = change.events[len(change.events) // 2 :]
            by_event = projection.specs_for_events(conn, ws, {e.name for e in late})
            projection.add_events(conn, ws, pk, late, by_event)
            projection.add_emails(conn, ws, pk, change.emails)
    return keys


def verdicts(
    engine: sa.Engine,
    ws: str,
    people: Sequence[Person],
    keys: Sequence[int],
    rule: ast.Rule,
    now: datetime,
) -> list[tuple[bool, bool, bool]]:
    """(reference, batch, incremental) for each person at `now`."""
    plan = compile_rule(rule)
    at = to_micros(now)
    with engine.connect() as conn:
        query = members_query(rule, Scope(ws, at), engine.dialect.name)
        batch = {row.profile_id for row in conn.execute(query)}
        out = []
        for i, (person, pk) in enumerate(zip(people, keys, strict=True)):
            reference = evaluate(rule, persons.normalized(person), now)
            coverage = projection.pruned_before(conn, ws)
            state = projection.load_state(
                conn, ws, pk, plan.spec_ids, emails=True, coverage=coverage
            )
            out.append((reference, f"p{i}" in batch, plan.evaluate(state, at)))
    return out


TICK = MICROSECOND


def periods(rule: ast.Rule) -> set[timedelta]:
    """Zero and every duration of the rule (windows, waits, trait periods)."""
    found = {timedelta(0)}
    for node in tree.conditions(rule):
        window = getattr(node, "window", None)
        if isinstance(window, ast.LastPeriod):
            found.add(window.period)
        for name in ("within", "period"):
            value = getattr(node, name, None)
            if isinstance(value, timedelta):
                found.add(value)
    return found


def boundaries(rule: ast.Rule, people: Sequence[Person]) -> list[datetime]:
    """Instants where results are most likely to flip: data instants, plus every period
    of the rule after them, and one microsecond before each."""
    durations = periods(rule)
    times: set[datetime] = set()
    for person in people:
        times.update(e.timestamp for e in person.events)
        for send in person.emails:
            times.update((send.sent_at, *send.opens, *send.clicks))
    found = set()
    for t in times:
        for period in durations:
            found.add(t + period)
            found.add(t + period - MICROSECOND)
    return sorted(found)
