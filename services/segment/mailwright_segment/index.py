"""Which segments a change can affect, and in which order to evaluate them.

A segment's result for a person depends only on the traits its rule names, the events its
specs match, the person's email history (for engagement conditions) and the other
segments it refers to. The index maps each of these to the segments that read it, so a
change to `country` re-evaluates only the rules that mention `country`, an `Order
Completed` event only those with a condition on that event. Segments are evaluated in
dependency order (a segment after those it refers to), and a membership that changes
brings its dependents into the same round.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from mailwright.rules import ast, tree
from mailwright_segment.incremental import Plan, compile_rule
from mailwright_segment.specs import node_specs


@dataclass(frozen=True)
class IndexedSegment:
    pk: int
    segment_id: str
    version: int
    rule: ast.Rule
    plan: Plan
    traits: frozenset[str]
    events: frozenset[str]
    emails: bool
    references: frozenset[str]

    @classmethod
    def of(cls, pk: int, segment_id: str, version: int, rule: ast.Rule) -> IndexedSegment:
        leaves = tree.conditions(rule)
        traits = frozenset(
            n.trait
            for n in leaves
            if isinstance(n, ast.TraitCondition | ast.TraitDateCondition | ast.TraitWithinLast)
        )
        events = frozenset(s.event for n in leaves for s in node_specs(n))
        emails = any(isinstance(n, ast.LastEmailsEngagement | ast.WindowEngagement) for n in leaves)
        return cls(
            pk,
            segment_id,
            version,
            rule,
            compile_rule(rule),
            traits,
            events,
            emails,
            tree.segment_references(rule),
        )


class RuleIndex:
    """The segments of one workspace, indexed by what they read."""

    def __init__(self, segments: Iterable[IndexedSegment], epoch: int = 0) -> None:
        self.epoch = epoch
        self.segments = {s.segment_id: s for s in segments}
        self.order = _dependency_order(self.segments)
        self._by_trait: dict[str, list[str]] = {}
        self._by_event: dict[str, list[str]] = {}
        self._emails: list[str] = []
        self._dependents: dict[str, list[str]] = {}
        for s in self.segments.values():
            for key in s.traits:
                self._by_trait.setdefault(key, []).append(s.segment_id)
            for name in s.events:
                self._by_event.setdefault(name, []).append(s.segment_id)
            if s.emails:
                self._emails.append(s.segment_id)
            for ref in s.references:
                self._dependents.setdefault(ref, []).append(s.segment_id)

    def affected(self, traits: Iterable[str], events: Iterable[str], emails: bool) -> set[str]:
        found: set[str] = set()
        for key in traits:
            found.update(self._by_trait.get(key, ()))
        for name in events:
            found.update(self._by_event.get(name, ()))
        if emails:
            found.update(self._emails)
        return found

    def dependents(self, segment_id: str) -> list[str]:
        return self._dependents.get(segment_id, [])

    def rounds(self, start: Iterable[str]) -> Round:
        return Round(self, start)


class Round:
    """Segments to evaluate for one person, popped in dependency order; `changed(id)`
    adds the dependents of a segment whose membership changed."""

    def __init__(self, index: RuleIndex, start: Iterable[str]) -> None:
        self.index = index
        self.heap: list[tuple[int, str]] = []
        self.queued: set[str] = set()
        for segment_id in start:
            self.add(segment_id)

    def add(self, segment_id: str) -> None:
        if segment_id in self.queued or segment_id not in self.index.segments:
            return
        self.queued.add(segment_id)
        heapq.heappush(self.heap, (self.index.order[segment_id], segment_id))

    def changed(self, segment_id: str) -> None:
        for dependent in self.index.dependents(segment_id):
            self.add(dependent)

    def __iter__(self) -> Round:
        return self

    def __next__(self) -> IndexedSegment:
        if not self.heap:
            raise StopIteration
        _, segment_id = heapq.heappop(self.heap)
        return self.index.segments[segment_id]


def _dependency_order(segments: dict[str, IndexedSegment]) -> dict[str, int]:
    """Position of each segment such that a segment comes after those it refers to."""
    order: dict[str, int] = {}
    visiting: set[str] = set()
    for root in sorted(segments):
        stack: list[tuple[str, list[str]]] = [(root, sorted(segments[root].references))]
        if root in order:
            continue
        visiting.add(root)
        while stack:
            current, pending = stack[-1]
            while pending and (pending[-1] in order or pending[-1] not in segments):
                pending.pop()
            if pending:
                nxt = pending.pop()
                if nxt in visiting:  # a cycle (refused at save); break it here
                    continue
                visiting.add(nxt)
                stack.append((nxt, sorted(segments[nxt].references)))
                continue
            stack.pop()
            visiting.discard(current)
            order[current] = len(order)
    return order
