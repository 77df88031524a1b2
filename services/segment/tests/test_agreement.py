"""One meaning: the batch (SQL), incremental and reference evaluators agree.

Random rule trees and random histories (`mailwright.testing.rules`) go into a projection on
SQLite and on PostgreSQL; at random instants and at the instants where results are most
likely to flip (a window's edge, a wait maturing, one microsecond before), each person's
membership by the compiled SQL, by the incremental evaluator on the person's loaded state
and by the reference evaluator on the person is the same.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from agreement import boundaries, seed, verdicts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwright.rules import ast
from mailwright.rules.person import Person
from mailwright.rules.printer import to_text
from mailwright.testing.rules import EPOCH, HORIZON, instants, persons, rules
from mailwright_segment.store import projection
from mailwright_segment.values import MICROS_PER_DAY, day_of, to_micros

people_lists = st.lists(persons(), min_size=1, max_size=3)
EPOCH_DAY = day_of(to_micros(EPOCH))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rule=rules(max_leaves=6), people=people_lists, data=st.data())
def test_batch_incremental_and_reference_evaluators_agree(
    engine: sa.Engine, rule: ast.Rule, people: list[Person], data: st.DataObject
) -> None:
    ws = f"w{uuid.uuid4().hex[:12]}"
    keys = seed(engine, ws, people, rule)
    edges = boundaries(rule, people)
    moments = data.draw(st.lists(instants(), min_size=1, max_size=3))
    if edges:
        moments += data.draw(st.lists(st.sampled_from(edges), min_size=1, max_size=6))
    for now in moments:
        for i, (reference, batch, incremental) in enumerate(
            verdicts(engine, ws, people, keys, rule, now)
        ):
            assert (batch, incremental) == (reference, reference), (
                f"p{i} at {now.isoformat()}: reference {reference}, batch {batch}, "
                f"incremental {incremental} for {to_text(rule)}"
            )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rule=rules(max_leaves=4), people=people_lists, data=st.data())
def test_batch_and_incremental_agree_after_old_hits_are_pruned(
    engine: sa.Engine, rule: ast.Rule, people: list[Person], data: st.DataObject
) -> None:
    ws = f"w{uuid.uuid4().hex[:12]}"
    keys = seed(engine, ws, people, rule)
    cutoff_day = data.draw(st.integers(0, HORIZON.days)) + EPOCH_DAY
    with engine.begin() as conn:
        projection.workspace(conn, ws, exclusive=True)
        projection.prune_before(conn, ws, cutoff_day * MICROS_PER_DAY)
    moments = data.draw(st.lists(instants(), min_size=1, max_size=4))
    for now in moments:
        for i, (_, batch, incremental) in enumerate(verdicts(engine, ws, people, keys, rule, now)):
            assert batch == incremental, (
                f"p{i} at {now.isoformat()} after pruning before day {cutoff_day}: batch {batch}, "
                f"incremental {incremental} for {to_text(rule)}"
            )
