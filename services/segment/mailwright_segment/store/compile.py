"""The batch evaluator: a rule compiled to one SQL query over the projection.

The query scans the workspace's profiles once and LEFT JOINs one relation per condition:

* a trait condition joins the trait row of its key (typed columns: kind, text, number,
  flag, instant) and, for `contains` on lists, the matching list items;
* an event count or aggregate joins, per person, the sum of the day buckets of the whole
  UTC days inside the window and of the hits of the partial days at its edges
  (`windows.split`): counts, and the count, exact sum, minimum and maximum of the measured
  numbers;
* a sequence joins the people with a matching anchor (a window function ranks the
  first-step hits per person and pairing key; an EXISTS looks for the second step);
* email engagement joins the last N sends ranked by (sent time, send id) or the sends with
  an action inside the window;
* `in segment` joins the current members of that segment.

Each condition becomes a predicate that is never NULL (a person without a row has count
0, sum 0, no minimum), so `not`, `and` and `or` are SQL's. A condition every member must
meet (one reached from the root through `and` only) that no person without rows can meet
is joined with an INNER JOIN instead, its test pushed into the join (a HAVING, an ON), so
the query is the one a person would write for it. Comparisons follow the reference
evaluator: a missing value fails everything but `not exists`, kinds never coerce, strings
compare exactly, numbers by value (exact on PostgreSQL's NUMERIC; on SQLite sums and
averages go through `sqlfuncs`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from mailwright.rules import ast
from mailwright_segment.specs import aggregate_spec, count_spec, sequence_specs
from mailwright_segment.store.tables import (
    Number,
    buckets,
    email_actions,
    hits,
    memberships,
    profiles,
    segments,
    sends,
    trait_items,
    traits,
)
from mailwright_segment.values import micros_of, to_micros
from mailwright_segment.windows import Span, span_of, split

Predicate = Any
"""A boolean SQL expression that is never NULL."""

_OPERATORS: dict[ast.Operator, Callable[[Any, Any], Any]] = {
    ast.Operator.EQ: operator.eq,
    ast.Operator.NE: operator.ne,
    ast.Operator.LT: operator.lt,
    ast.Operator.LE: operator.le,
    ast.Operator.GT: operator.gt,
    ast.Operator.GE: operator.ge,
}


def compare_with(op: ast.Operator, left: Any, right: Any) -> Any:
    return _OPERATORS[op](left, right)


@dataclass(frozen=True)
class Scope:
    """Which people the query considers: a workspace at an instant, optionally a range of
    profile keys (recompute jobs work in slices)."""

    ws: str
    now: int
    low: int | None = None
    high: int | None = None


def members_query(rule: ast.Rule, scope: Scope, dialect: str) -> Any:
    """The people matching `rule` at `scope.now`: rows of (profile key, profile id)."""
    compiler = _Compiler(scope, dialect)
    condition = compiler.node(rule)
    query = (
        sa.select(compiler.person.c.pk, compiler.person.c.profile_id)
        .select_from(compiler.joined())
        .where(compiler.person.c.ws == scope.ws, condition)
    )
    return compiler.in_range(query, compiler.person.c.pk)


def count_query(rule: ast.Rule, scope: Scope, dialect: str) -> Any:
    inner = members_query(rule, scope, dialect).subquery()
    return sa.select(sa.func.count()).select_from(inner)


def _definitely(expression: Any) -> Predicate:
    """A predicate that is false where SQL would say NULL."""
    return sa.func.coalesce(expression, sa.false())


@dataclass
class _Compiler:
    scope: Scope
    dialect: str
    person: Any = field(default_factory=lambda: profiles.alias("p"))
    joins: list[tuple[Any, Any, bool]] = field(default_factory=list)

    @property
    def sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def joined(self) -> Any:
        source = self.person
        for relation, on, inner in sorted(self.joins, key=lambda j: not j[2]):
            source = source.join(relation, on) if inner else source.outerjoin(relation, on)
        return source

    def join(self, relation: Any, inner: bool = False) -> Any:
        """Join a per-person relation (with a `pk` column) on the person: INNER when every
        member must have a row in it, else LEFT."""
        alias = relation.subquery(f"c{len(self.joins)}")
        self.joins.append((alias, alias.c.pk == self.person.c.pk, inner))
        return alias

    def in_range(self, query: Any, column: Any) -> Any:
        if self.scope.low is not None:
            query = query.where(column >= self.scope.low)
        if self.scope.high is not None:
            query = query.where(column <= self.scope.high)
        return query

    # -- structure -----------------------------------------------------------------------
    def node(self, rule: ast.Rule, required: bool = True) -> Predicate:
        """The predicate of a node; `required`: every member must meet it (reached from
        the root through `and` only)."""
        if isinstance(rule, ast.And):
            return sa.and_(*(self.node(c, required) for c in rule.conditions))
        if isinstance(rule, ast.Or):
            return sa.or_(*(self.node(c, False) for c in rule.conditions))
        if isinstance(rule, ast.Not):
            return sa.not_(self.node(rule.condition, False))
        return self.leaf(rule, required)

    def leaf(self, node: ast.Condition, required: bool) -> Predicate:
        if isinstance(node, ast.TraitCondition):
            return self.trait(node, required)
        if isinstance(node, ast.TraitDateCondition):
            limit = to_micros(node.date)
            before = node.op is ast.DateOperator.BEFORE
            return self.on_trait(
                node.trait,
                lambda row: row.c.instant < limit if before else row.c.instant > limit,
                required,
            )
        if isinstance(node, ast.TraitWithinLast):
            now, period = self.scope.now, micros_of(node.period)

            def within(row: Any) -> Any:
                inside = sa.and_(row.c.instant > now - period, row.c.instant <= now)
                if node.negated:
                    return sa.and_(row.c.instant.is_not(None), sa.not_(inside))
                return inside

            return self.on_trait(node.trait, within, required)
        if isinstance(node, ast.EventCount | ast.DidNotPerform):
            return self.count(node, required)
        if isinstance(node, ast.EventAggregate):
            return self.aggregate(node, required)
        if isinstance(node, ast.Sequence):
            return self.sequence(node, required)
        if isinstance(node, ast.LastEmailsEngagement):
            return self.last_emails(node, required)
        if isinstance(node, ast.WindowEngagement):
            return self.window_engagement(node, required)
        return self.membership(node, required)

    # -- traits --------------------------------------------------------------------------
    def trait_row(self, key: str, test: Callable[[Any], Any] | None = None) -> Any:
        """Join the trait row of `key`: LEFT, or INNER with `test` in its ON clause."""
        alias = traits.alias(f"c{len(self.joins)}")
        on = sa.and_(alias.c.pk == self.person.c.pk, alias.c.key == key)
        if test is not None:
            on = sa.and_(on, test(alias))
        self.joins.append((alias, on, test is not None))
        return alias

    def on_trait(self, key: str, test: Callable[[Any], Any], required: bool) -> Predicate:
        """A test that needs the trait's value: pushed into an inner join when required."""
        if required:
            self.trait_row(key, test)
            return sa.true()
        return _definitely(test(self.trait_row(key)))

    def trait(self, node: ast.TraitCondition, required: bool) -> Predicate:
        op, literal = node.op, node.value
        if required and op not in (ast.Operator.NOT_EXISTS, ast.Operator.CONTAINS):
            return self.on_trait(node.trait, lambda row: self.trait_test(node, row), True)
        row = self.trait_row(node.trait)
        if op is ast.Operator.CONTAINS:
            assert literal is not None
            assert not isinstance(literal, tuple)
            return self.contains(node.trait, row, literal)
        return _definitely(self.trait_test(node, row))

    def trait_test(self, node: ast.TraitCondition, row: Any) -> Any:
        """The test of a trait condition on its (possibly missing) row; NULL means false."""
        op, literal = node.op, node.value
        present = row.c.kind.is_not(None)
        if op is ast.Operator.EXISTS:
            return present
        if op is ast.Operator.NOT_EXISTS:
            return row.c.kind.is_(None)
        if op in (ast.Operator.IN, ast.Operator.NOT_IN):
            assert isinstance(literal, tuple)
            found = sa.or_(*(_equal(row.c, item) for item in literal))
            return found if op is ast.Operator.IN else sa.and_(present, sa.not_(found))
        assert literal is not None
        assert not isinstance(literal, tuple)
        if op is ast.Operator.EQ:
            return _equal(row.c, literal)
        if op is ast.Operator.NE:
            return sa.and_(present, sa.not_(_equal(row.c, literal)))
        if op in ast.ORDERINGS:
            assert isinstance(literal, Decimal)
            return sa.and_(row.c.kind == "n", compare_with(op, row.c.number, _number(literal)))
        assert op is ast.Operator.STARTS_WITH
        assert isinstance(literal, str)
        prefix = sa.func.substr(row.c.text, 1, len(literal)) == literal
        return sa.and_(row.c.kind == "s", prefix)

    def contains(self, key: str, row: Any, literal: ast.Scalar) -> Predicate:
        element = sa.select(trait_items.c.pk).where(
            trait_items.c.ws == self.scope.ws,
            trait_items.c.key == key,
            _equal(trait_items.c, literal),
        )
        items = self.join(self.in_range(element, trait_items.c.pk).distinct())
        in_list = items.c.pk.is_not(None)
        if not isinstance(literal, str):
            return in_list
        position = sa.func.instr if self.sqlite else sa.func.strpos
        substring = sa.and_(row.c.kind == "s", position(row.c.text, literal) > 0)
        return sa.or_(_definitely(substring), in_list)

    # -- events --------------------------------------------------------------------------
    def window_rows(self, spec_id: str, span: Span, measured: bool) -> list[Any]:
        """SELECTs of (pk, c[, n, total, minimum, maximum]) whose union covers the span:
        the day buckets of its whole days, the hits of its partial days."""
        pieces = split(span)
        parts: list[Any] = []
        ws = self.scope.ws
        if pieces.days is not None:
            first, end = pieces.days
            columns = [buckets.c.pk, buckets.c["count"].label("c")]
            if measured:
                columns += [buckets.c.n, buckets.c.total, buckets.c.minimum, buckets.c.maximum]
            query = sa.select(*columns).where(
                buckets.c.ws == ws, buckets.c.spec_id == spec_id, buckets.c.day < end
            )
            if first is not None:
                query = query.where(buckets.c.day >= first)
            parts.append(self.in_range(query, buckets.c.pk))
        for edge in pieces.edges:
            if edge.empty:
                continue
            # One SELECT per edge: each is a narrow range of the (spec, at) index.
            columns = [hits.c.pk, sa.literal(1).label("c")]
            if measured:
                columns += [
                    sa.case((hits.c.number.is_(None), 0), else_=1).label("n"),
                    sa.func.coalesce(hits.c.number, sa.literal(0, Number())).label("total"),
                    hits.c.number.label("minimum"),
                    hits.c.number.label("maximum"),
                ]
            query = sa.select(*columns).where(
                hits.c.ws == ws, hits.c.spec_id == spec_id, hits.c.at < edge.stop
            )
            if edge.start is not None:
                query = query.where(hits.c.at >= edge.start)
            parts.append(self.in_range(query, hits.c.pk))
        return parts

    def count(self, node: ast.EventCount | ast.DidNotPerform, required: bool) -> Predicate:
        parts = self.window_rows(
            count_spec(node).id, span_of(node.window, self.scope.now), measured=False
        )
        op, count = (
            (node.op, node.count) if isinstance(node, ast.EventCount) else (ast.Operator.EQ, 0)
        )
        if not parts:
            return sa.true() if compare_with(op, 0, count) else sa.false()
        union = sa.union_all(*parts).subquery()
        per_person = sa.select(union.c.pk, sa.func.sum(union.c.c).label("cnt")).group_by(union.c.pk)
        if required and not compare_with(op, 0, count):
            self.join(per_person.having(compare_with(op, sa.func.sum(union.c.c), count)), True)
            return sa.true()
        row = self.join(per_person)
        return _definitely(compare_with(op, sa.func.coalesce(row.c.cnt, 0), count))

    def aggregate(self, node: ast.EventAggregate, required: bool) -> Predicate:
        parts = self.window_rows(
            aggregate_spec(node).id, span_of(node.window, self.scope.now), measured=True
        )
        kind, op, value = node.aggregate, node.op, node.value
        if not parts:
            empty = kind is ast.Aggregate.SUM and compare_with(op, Decimal(0), value)
            return sa.true() if empty else sa.false()
        union = sa.union_all(*parts).subquery()
        total = sa.func.mw_dsum(union.c.total) if self.sqlite else sa.func.sum(union.c.total)
        columns = {
            "nn": sa.func.sum(union.c.n),
            "tot": total,
            "mn": sa.func.min(union.c.minimum),
            "mx": sa.func.max(union.c.maximum),
        }
        per_person = sa.select(
            union.c.pk, *(column.label(label) for label, column in columns.items())
        ).group_by(union.c.pk)
        if required and (kind is not ast.Aggregate.SUM or not compare_with(op, 0, value)):
            test = self.aggregate_test(kind, op, value, columns, zero=False)
            self.join(per_person.having(test), True)
            return sa.true()
        row = self.join(per_person)
        found = {label: row.c[label] for label in columns}
        return _definitely(self.aggregate_test(kind, op, value, found, zero=True))

    def aggregate_test(
        self,
        kind: ast.Aggregate,
        op: ast.Operator,
        value: Decimal,
        columns: dict[str, Any],
        zero: bool,
    ) -> Any:
        """`AGG op value` over per-person columns nn, tot, mn, mx (`zero`: a person may
        have no row, whose sum is 0)."""
        if kind is ast.Aggregate.SUM:
            total = sa.func.coalesce(columns["tot"], 0) if zero else columns["tot"]
            return self.exact(op, total, value)
        if kind is ast.Aggregate.AVERAGE:
            # avg op v  <=>  sum op v * n  (n > 0): exact, with no division.
            scaled = (
                sa.func.mw_dmul(str(value), columns["nn"])
                if self.sqlite
                else sa.cast(_number(value) * columns["nn"], sa.Numeric())
            )
            return sa.and_(columns["nn"] > 0, self.exact(op, columns["tot"], scaled))
        extreme = columns["mn"] if kind is ast.Aggregate.MIN else columns["mx"]
        return sa.and_(columns["nn"] > 0, compare_with(op, extreme, _number(value)))

    def exact(self, op: ast.Operator, left: Any, right: Any) -> Any:
        """`left op right` between exact numbers (sums and products)."""
        if self.sqlite:
            right_value = str(right) if isinstance(right, Decimal) else right
            return compare_with(op, sa.func.mw_dcmp(left, right_value), 0)
        return compare_with(op, left, _number(right) if isinstance(right, Decimal) else right)

    def sequence(self, node: ast.Sequence, required: bool) -> Predicate:
        span = span_of(node.window, self.scope.now)
        if span.empty:
            return sa.false()
        first, then = sequence_specs(node)
        ws, now, within = self.scope.ws, self.scope.now, micros_of(node.within)
        ranked = sa.select(
            hits.c.pk,
            hits.c.at,
            hits.c.grp,
            sa.func.count()
            .over(partition_by=(hits.c.pk, hits.c.grp), order_by=hits.c.at)
            .label("rank"),
        ).where(hits.c.ws == ws, hits.c.spec_id == first.id, hits.c.at < span.stop)
        if span.start is not None:
            ranked = ranked.where(hits.c.at >= span.start)
        if node.per is not None:
            ranked = ranked.where(hits.c.grp.is_not(None))
        anchors = self.in_range(ranked, hits.c.pk).subquery("anchors")
        follower = hits.alias("follower")
        followed = sa.exists().where(
            follower.c.ws == ws,
            follower.c.spec_id == then.id,
            follower.c.pk == anchors.c.pk,
            follower.c.at > anchors.c.at,
            follower.c.at <= anchors.c.at + within,
            follower.c.at <= now,
        )
        if node.per is not None:
            followed = followed.where(follower.c.grp == anchors.c.grp)
        query = sa.select(anchors.c.pk).where(anchors.c.rank >= node.min_count)
        if node.negated:
            query = query.where(anchors.c.at + within <= now, ~followed)
        else:
            query = query.where(followed)
        return self.exists_in(query.distinct(), required)

    def exists_in(self, relation: Any, required: bool) -> Predicate:
        """Whether the person is in `relation` (of `pk`)."""
        row = self.join(relation, required)
        return sa.true() if required else row.c.pk.is_not(None)

    # -- email ---------------------------------------------------------------------------
    def acted(self, action: ast.EmailAction, opened: Any, clicked: Any) -> Any:
        now = self.scope.now
        tests = []
        if action is not ast.EmailAction.CLICKED:
            tests.append(opened <= now)
        if action is not ast.EmailAction.OPENED:
            tests.append(clicked <= now)
        return sa.case((sa.or_(*tests), 1), else_=0)

    def send_order(self) -> Any:
        if self.sqlite:
            return sends.c.send_id.desc()
        return sa.collate(sends.c.send_id, "C").desc()

    def last_emails(self, node: ast.LastEmailsEngagement, required: bool) -> Predicate:
        now = self.scope.now
        ranked = sa.select(
            sends.c.pk,
            self.acted(node.action, sends.c.first_open, sends.c.first_click).label("acted"),
            sa.func.row_number()
            .over(partition_by=sends.c.pk, order_by=(sends.c.sent_at.desc(), self.send_order()))
            .label("rn"),
        ).where(sends.c.ws == self.scope.ws, sends.c.sent_at.is_not(None), sends.c.sent_at <= now)
        recent = self.in_range(ranked, sends.c.pk).subquery("recent")
        engaged = (
            sa.select(recent.c.pk)
            .where(recent.c.rn <= node.last)
            .group_by(recent.c.pk)
            .having(sa.func.sum(recent.c.acted) >= node.min_count)
        )
        return self.exists_in(engaged, required)

    def window_engagement(self, node: ast.WindowEngagement, required: bool) -> Predicate:
        span = span_of(node.window, self.scope.now)
        if span.empty:
            return sa.false()
        kinds = {
            ast.EmailAction.OPENED: ["o"],
            ast.EmailAction.CLICKED: ["c"],
            ast.EmailAction.OPENED_OR_CLICKED: ["o", "c"],
        }[node.action]
        action = email_actions
        query = (
            sa.select(action.c.pk)
            .select_from(
                action.join(
                    sends,
                    sa.and_(
                        sends.c.ws == action.c.ws,
                        sends.c.pk == action.c.pk,
                        sends.c.send_id == action.c.send_id,
                    ),
                )
            )
            .where(
                action.c.ws == self.scope.ws,
                action.c.kind.in_(kinds),
                action.c.at < span.stop,
                sends.c.sent_at.is_not(None),
            )
            .group_by(action.c.pk)
            .having(sa.func.count(sa.distinct(action.c.send_id)) >= node.min_count)
        )
        if span.start is not None:
            query = query.where(action.c.at >= span.start)
        return self.exists_in(self.in_range(query, action.c.pk), required)

    # -- other segments ------------------------------------------------------------------
    def membership(self, node: ast.SegmentMembership, required: bool) -> Predicate:
        query = (
            sa.select(memberships.c.profile_pk.label("pk"))
            .select_from(memberships.join(segments, segments.c.pk == memberships.c.segment_pk))
            .where(
                segments.c.ws == self.scope.ws,
                segments.c.segment_id == node.segment,
                memberships.c.member.is_(True),
            )
        )
        members = self.in_range(query, memberships.c.profile_pk)
        if not node.negated:
            return self.exists_in(members, required)
        return self.join(members).c.pk.is_(None)


def _number(value: Decimal) -> Any:
    return sa.bindparam(None, value, type_=Number())


def _equal(columns: Any, literal: ast.Scalar) -> Any:
    """Equal without coercion: same kind and same value."""
    if isinstance(literal, bool):
        return sa.and_(columns.kind == "b", columns.flag == literal)
    if isinstance(literal, str):
        return sa.and_(columns.kind == "s", columns.text == literal)
    return sa.and_(columns.kind == "n", columns.number == _number(literal))
