"""The incremental evaluator: a rule compiled to Python closures over one person's state.

When a change arrives for a person, the service loads that person's projection
(`PersonState`) and runs the plans of the rules the change can affect. Each leaf of the
rule becomes a closure that reads the state with bisections on sorted hits, so a
condition costs a few microseconds whatever the length of the history. Value comparisons
reuse the reference evaluator's own helpers (`test`, `compare`, `aggregate`), so a
comparison means the same thing here as in `mailwright.rules.reference`; counting follows
`windows.split`, like the SQL compiler, so both count the same events even after old hits
have been pruned.

`next_change` finds when the result changes by time alone: it lists the instants at which
some condition may change (an event leaving a sliding window, a sequence's wait maturing,
a date trait entering or leaving its window, data stamped in the future becoming visible)
and evaluates at each, in order.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from mailwright.rules import ast
from mailwright.rules.reference import compare, test
from mailwright_segment.specs import aggregate_spec, count_spec, sequence_specs, specs_of
from mailwright_segment.state import Hits, PersonState, Send, SpecData
from mailwright_segment.values import MICROS_PER_DAY, micros_of, to_micros
from mailwright_segment.windows import Span, span_of, split

Test = Callable[[PersonState, int], bool]

_OPERATORS: dict[ast.Operator, Callable[[int, int], bool]] = {
    ast.Operator.EQ: operator.eq,
    ast.Operator.NE: operator.ne,
    ast.Operator.LT: operator.lt,
    ast.Operator.LE: operator.le,
    ast.Operator.GT: operator.gt,
    ast.Operator.GE: operator.ge,
}
Candidates = Callable[[PersonState, int], Iterable[int]]

MAX_CANDIDATES = 5000
"""Instants `next_change` tries; past them it answers the last one tried, where the
timer re-evaluates and schedules again."""


@dataclass(frozen=True)
class Plan:
    """A compiled rule: its test, the sources of its change instants, the specs it reads."""

    rule: ast.Rule
    test: Test
    candidates: tuple[Candidates, ...]
    spec_ids: frozenset[str]

    def evaluate(self, state: PersonState, now: int) -> bool:
        return self.test(state, now)


def compile_rule(rule: ast.Rule) -> Plan:
    candidates: list[Candidates] = []
    test_rule = _node(rule, candidates)
    spec_ids = frozenset(s.id for s in specs_of(rule))
    return Plan(rule, test_rule, tuple(candidates), spec_ids)


def next_change(plan: Plan, state: PersonState, now: int) -> int | None:
    """The first instant after `now` at which the plan's result differs, or None."""
    found: set[int] = set()
    for source in plan.candidates:
        found.update(t for t in source(state, now) if t > now)
    if not found:
        return None
    current = plan.test(state, now)
    for tried, t in enumerate(sorted(found), start=1):
        if plan.test(state, t) != current or tried >= MAX_CANDIDATES:
            return t
    return None


# ---------------------------------------------------------------------------------------
# Structure


def _cost(rule: ast.Rule) -> int:
    """A rank of how much a condition's test costs: an `and` or `or` tries its cheap
    conditions first, since every test is a pure function of the person and the instant
    (the result is the same in any order) and the first false (true) one decides."""
    if isinstance(rule, ast.And | ast.Or):
        return max(_cost(c) for c in rule.conditions)
    if isinstance(rule, ast.Not):
        return _cost(rule.condition)
    if isinstance(rule, ast.TraitCondition | ast.SegmentMembership):
        return 0  # a dictionary lookup
    if isinstance(rule, ast.TraitDateCondition | ast.TraitWithinLast):
        return 1
    if isinstance(rule, ast.EventCount | ast.DidNotPerform):
        return 2  # bisections of the hits, perhaps day buckets
    return 3  # aggregates, sequences, email engagement: walks of hits or sends


def _node(rule: ast.Rule, candidates: list[Candidates]) -> Test:
    if isinstance(rule, ast.And):
        parts = tuple(_node(c, candidates) for c in sorted(rule.conditions, key=_cost))
        if len(parts) == 2:
            first, second = parts
            return lambda s, now: first(s, now) and second(s, now)

        def every(s: PersonState, now: int) -> bool:
            # A plain loop: a generator costs more on this hot path.
            for part in parts:  # noqa: SIM110
                if not part(s, now):
                    return False
            return True

        return every
    if isinstance(rule, ast.Or):
        parts = tuple(_node(c, candidates) for c in sorted(rule.conditions, key=_cost))
        if len(parts) == 2:
            first, second = parts
            return lambda s, now: first(s, now) or second(s, now)

        def some(s: PersonState, now: int) -> bool:
            for part in parts:  # noqa: SIM110
                if part(s, now):
                    return True
            return False

        return some
    if isinstance(rule, ast.Not):
        inner = _node(rule.condition, candidates)
        return lambda s, now: not inner(s, now)
    return _leaf(rule, candidates)


def _leaf(node: ast.Condition, candidates: list[Candidates]) -> Test:
    if isinstance(node, ast.TraitCondition):
        return _trait(node)
    if isinstance(node, ast.TraitDateCondition):
        return _trait_date(node)
    if isinstance(node, ast.TraitWithinLast):
        return _trait_within(node, candidates)
    if isinstance(node, ast.EventCount | ast.DidNotPerform | ast.EventAggregate):
        return _event(node, candidates)
    if isinstance(node, ast.Sequence):
        return _sequence(node, candidates)
    if isinstance(node, ast.LastEmailsEngagement):
        return _last_emails(node, candidates)
    if isinstance(node, ast.WindowEngagement):
        return _window_engagement(node, candidates)
    segment, negated = node.segment, node.negated
    return lambda s, now: (segment in s.segments) != negated


# ---------------------------------------------------------------------------------------
# Traits


def _trait(node: ast.TraitCondition) -> Test:
    key, op, literal = node.trait, node.op, node.value
    if op is ast.Operator.EQ and isinstance(literal, str):
        # The reference's equality for a string literal, without its general dispatch.
        return lambda s, now: isinstance(v := s.traits.get(key), str) and v == literal
    return lambda s, now: test(op, literal, s.traits.get(key))


def _trait_date(node: ast.TraitDateCondition) -> Test:
    key, limit = node.trait, to_micros(node.date)
    before = node.op is ast.DateOperator.BEFORE

    def evaluate(s: PersonState, now: int) -> bool:
        instant = s.instant(key)
        if instant is None:
            return False
        return instant < limit if before else instant > limit

    return evaluate


def _trait_within(node: ast.TraitWithinLast, candidates: list[Candidates]) -> Test:
    key, period, negated = node.trait, micros_of(node.period), node.negated

    def evaluate(s: PersonState, now: int) -> bool:
        instant = s.instant(key)
        if instant is None:
            return False
        inside = now - period < instant <= now
        return not inside if negated else inside

    def changes(s: PersonState, now: int) -> Iterable[int]:
        instant = s.instant(key)
        return () if instant is None else (instant, instant + period)

    candidates.append(changes)
    return evaluate


# ---------------------------------------------------------------------------------------
# Events: counts and aggregates over a window


def _index_range(hits: Hits, start: int | None, stop: int) -> tuple[int, int]:
    lo = 0 if start is None else bisect_left(hits.times, start)
    return lo, bisect_left(hits.times, stop)


def _parts(
    span: Span, coverage: int | None
) -> tuple[list[tuple[int | None, int]], tuple[int | None, int] | None]:
    """Which hit ranges and which bucket days make up the span (see windows.split)."""
    if span.empty:
        return [], None
    if coverage is None or (span.start is not None and span.start >= coverage):
        return [(span.start, span.stop)], None
    pieces = split(span)
    ranges: list[tuple[int | None, int]] = [(e.start, e.stop) for e in pieces.edges]
    if pieces.days is None:
        return ranges, None
    first, end = pieces.days
    covered = coverage // MICROS_PER_DAY
    days = (first, min(end, covered)) if first is None or first < covered else None
    if end > covered:
        lower = covered if first is None else max(first, covered)
        ranges.append((lower * MICROS_PER_DAY, end * MICROS_PER_DAY))
    return ranges, days


def _day_range(data: SpecData, days: tuple[int | None, int]) -> range:
    first, end = days
    lo = 0 if first is None else bisect_left(data.days, first)
    return range(lo, bisect_left(data.days, end))


def count_in(data: SpecData | None, span: Span, coverage: int | None) -> int:
    if data is None:
        return 0
    ranges, days = _parts(span, coverage)
    total = 0
    for start, stop in ranges:
        lo, hi = _index_range(data.hits, start, stop)
        total += hi - lo
    if days is not None:
        total += sum(data.buckets[i].count for i in _day_range(data, days))
    return total


def measure_in(
    data: SpecData | None, span: Span, coverage: int | None
) -> tuple[int, Decimal, Decimal | None, Decimal | None]:
    """(how many numbers, their sum, minimum, maximum) of the measured property."""
    n, total = 0, Decimal(0)
    low: Decimal | None = None
    high: Decimal | None = None
    if data is None:
        return n, total, low, high
    ranges, days = _parts(span, coverage)
    for start, stop in ranges:
        lo, hi = _index_range(data.hits, start, stop)
        for number in data.hits.numbers[lo:hi]:
            if number is not None:
                n += 1
                total += number
                low = number if low is None or number < low else low
                high = number if high is None or number > high else high
    if days is not None:
        for i in _day_range(data, days):
            bucket = data.buckets[i]
            if bucket.n:
                n += bucket.n
                total += bucket.total
                if bucket.minimum is not None and (low is None or bucket.minimum < low):
                    low = bucket.minimum
                if bucket.maximum is not None and (high is None or bucket.maximum > high):
                    high = bucket.maximum
    return n, total, low, high


def _aggregate_value(
    kind: ast.Aggregate, n: int, total: Decimal, low: Decimal | None, high: Decimal | None
) -> Decimal | None:
    if kind is ast.Aggregate.SUM:
        return total
    if n == 0:
        return None
    if kind is ast.Aggregate.AVERAGE:
        # The reference's division: an exact sum over a count, to 28 significant digits.
        return total / n
    return low if kind is ast.Aggregate.MIN else high


def _event(
    node: ast.EventCount | ast.DidNotPerform | ast.EventAggregate, candidates: list[Candidates]
) -> Test:
    window = node.window
    if isinstance(node, ast.EventAggregate):
        spec_id = aggregate_spec(node).id
        kind, op, value = node.aggregate, node.op, node.value

        def evaluate(s: PersonState, now: int) -> bool:
            measured = measure_in(s.specs.get(spec_id), span_of(window, now), s.coverage)
            result = _aggregate_value(kind, *measured)
            return result is not None and compare(op, result, value)

    elif isinstance(node, ast.EventCount):
        spec_id = count_spec(node).id
        count_op, count = _OPERATORS[node.op], node.count
        period = micros_of(window.period) if isinstance(window, ast.LastPeriod) else None

        def evaluate(s: PersonState, now: int) -> bool:
            data = s.specs.get(spec_id)
            if data is None:
                return bool(count_op(0, count))
            if period is not None and (s.coverage is None or now - period >= s.coverage):
                # A sliding window the hits cover: two bisections.
                times = data.hits.times
                found = bisect_left(times, now + 1) - bisect_left(times, now - period + 1)
            else:
                found = count_in(data, span_of(window, now), s.coverage)
            return bool(count_op(found, count))

    else:
        spec_id = count_spec(node).id

        def evaluate(s: PersonState, now: int) -> bool:
            return count_in(s.specs.get(spec_id), span_of(window, now), s.coverage) == 0

    candidates.append(_window_changes(spec_id, window))
    return evaluate


def _window_changes(spec_id: str, window: ast.Window) -> Candidates:
    period = micros_of(window.period) if isinstance(window, ast.LastPeriod) else None

    def changes(s: PersonState, now: int) -> Iterator[int]:
        data = s.specs.get(spec_id)
        if data is None:
            return
        yield from data.hits.times  # data stamped in the future becomes visible
        if period is not None:
            for t in data.hits.times:
                yield t + period  # and leaves the sliding window
            for day in data.days:
                yield day * MICROS_PER_DAY + period  # a pruned day turns into an edge

    return changes


# ---------------------------------------------------------------------------------------
# Sequences


def _by_group(
    hits: Hits, lo: int, hi: int, per: bool, stop: int | None = None
) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i in range(lo, hi):
        t = hits.times[i]
        if stop is not None and t >= stop:
            break
        group = hits.groups[i] if per else ""
        if group is not None:
            groups.setdefault(group, []).append(t)
    return groups


def _sequence(node: ast.Sequence, candidates: list[Candidates]) -> Test:
    first_spec, then_spec = sequence_specs(node)
    first_id, then_id = first_spec.id, then_spec.id
    within, needed, negated = micros_of(node.within), node.min_count, node.negated
    window, per = node.window, node.per is not None

    def evaluate(s: PersonState, now: int) -> bool:
        first = s.specs.get(first_id)
        if first is None:
            return False
        span = span_of(window, now)
        if span.empty:
            return False
        lo, hi = _index_range(first.hits, span.start, span.stop)
        anchors = _by_group(first.hits, lo, hi, per)
        if not anchors:
            return False
        then = s.specs.get(then_id)
        followers = _by_group(then.hits, 0, len(then.hits.times), per, now + 1) if then else {}
        for group, times in anchors.items():
            later = followers.get(group, [])
            for t in times:
                if bisect_right(times, t) < needed:
                    continue
                deadline = t + within
                followed = bisect_right(later, deadline) > bisect_right(later, t)
                if followed != negated and (not negated or deadline <= now):
                    return True
        return False

    period = micros_of(window.period) if isinstance(window, ast.LastPeriod) else None

    def changes(s: PersonState, now: int) -> Iterator[int]:
        first, then = s.specs.get(first_id), s.specs.get(then_id)
        if first is not None:
            for t in first.hits.times:
                yield t
                if period is not None:
                    yield t + period
                if negated:
                    yield t + within
        if then is not None:
            yield from then.hits.times

    candidates.append(changes)
    return evaluate


# ---------------------------------------------------------------------------------------
# Email engagement


def _acted(send: Send, action: ast.EmailAction, now: int) -> bool:
    opened, clicked = send.first_open, send.first_click
    if action is not ast.EmailAction.CLICKED and opened is not None and opened <= now:
        return True
    return action is not ast.EmailAction.OPENED and clicked is not None and clicked <= now


def _action_times(send: Send, action: ast.EmailAction) -> Iterator[int]:
    if action is not ast.EmailAction.CLICKED:
        yield from send.opens
    if action is not ast.EmailAction.OPENED:
        yield from send.clicks


def _last_emails(node: ast.LastEmailsEngagement, candidates: list[Candidates]) -> Test:
    action, last, needed = node.action, node.last, node.min_count

    def evaluate(s: PersonState, now: int) -> bool:
        sent = sorted(
            (x for x in s.sends if x.sent_at <= now),
            key=lambda x: (x.sent_at, x.send_id),
            reverse=True,
        )
        return sum(1 for x in sent[:last] if _acted(x, action, now)) >= needed

    def changes(s: PersonState, now: int) -> Iterator[int]:
        for send in s.sends:
            yield send.sent_at
            for first in (send.first_open, send.first_click):
                if first is not None:
                    yield first

    candidates.append(changes)
    return evaluate


def _any_in(times: list[int], span: Span) -> bool:
    i = 0 if span.start is None else bisect_left(times, span.start)
    return i < len(times) and times[i] < span.stop


def _window_engagement(node: ast.WindowEngagement, candidates: list[Candidates]) -> Test:
    action, window, needed = node.action, node.window, node.min_count
    opens = action is not ast.EmailAction.CLICKED
    clicks = action is not ast.EmailAction.OPENED

    def evaluate(s: PersonState, now: int) -> bool:
        span = span_of(window, now)
        if span.empty:
            return False
        engaged = 0
        for send in s.sends:
            if (opens and _any_in(send.opens, span)) or (clicks and _any_in(send.clicks, span)):
                engaged += 1
                if engaged >= needed:
                    return True
        return False

    period = micros_of(window.period) if isinstance(window, ast.LastPeriod) else None

    def changes(s: PersonState, now: int) -> Iterator[int]:
        for send in s.sends:
            for t in _action_times(send, action):
                yield t
                if period is not None:
                    yield t + period

    candidates.append(changes)
    return evaluate
