"""A profile's projections of its events, and how an event or a merge changes them.

Everything a profile holds besides identities is a projection of its event history:
plain traits (last write wins, `traits.TraitBook`), the aggregates computed traits read
(`computed.Aggregates`), consents (`consent.ConsentBook`), and the first and last time
it was seen. Each projection depends only on the set of events, not their order, so the
incremental path (apply as events arrive, combine on merge) and the replay path (rebuild
from history on unmerge) agree. `Change` collects what one batch changed, for
`profiles.changed`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailwright_profile.computed.aggregates import (
    CART_ADD,
    EMAIL_CLICK,
    EMAIL_OPEN,
    EMAIL_SENT,
    ORDER,
    PAGE,
    PRODUCT_VIEW,
    Activity,
    Aggregates,
)
from mailwright_profile.computed.registry import (
    REGISTRY,
    TraitRegistry,
    evaluate_all,
    evaluate_reading,
    next_change,
)
from mailwright_profile.consent import ConsentBook
from mailwright_profile.events import IncomingEvent
from mailwright_profile.identity import Identity, MergePolicy
from mailwright_profile.traits import TraitBook, same_value, sortable_time

__all__ = ["Change", "ProfileState", "computed_diff"]


@dataclass
class Change:
    """What changed in one profile during one batch of work."""

    traits: set[str] = field(default_factory=set)
    consents: set[str] = field(default_factory=set)
    events: list[IncomingEvent] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)  # key, held, new source
    aggregates: bool = False
    # parts of the aggregates touched (see computed FACETS); None: everything (a merge)
    facets: set[str] | None = field(default_factory=set)

    def touch(self, *facets: str) -> None:
        if self.facets is not None:
            self.facets.update(facets)

    @property
    def empty(self) -> bool:
        return not (self.traits or self.consents or self.events or self.identities or self.merged)


@dataclass
class ProfileState:
    """A profile's projections, loaded for a unit of work and written back after it."""

    workspace: str
    profile_id: str
    created_at: datetime
    version: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    traits: TraitBook = field(default_factory=TraitBook)
    aggregates: Aggregates = field(default_factory=Aggregates)
    consents: ConsentBook = field(default_factory=ConsentBook)
    computed: dict[str, Any] = field(default_factory=dict)
    new: bool = False
    evaluated_at: datetime | None = None  # when `computed` was last evaluated

    def apply(self, event: IncomingEvent, policy: MergePolicy, change: Change) -> None:
        """Fold one event into the projections, noting what changed."""
        stamp = sortable_time(event.timestamp)  # once for every trait and the aggregates
        for key, value in event.traits.items():
            held = self.traits.meta.get(key)
            before = self.traits.values.get(key)
            if self.traits.put(key, value, stamp, event.source, policy):
                change.traits.add(key)
            # Two sources disagreeing on a value, whichever won: for the audit.
            if (
                held is not None
                and held[1] != event.source
                and before is not None
                and value is not None
                and not same_value(before, value)
            ):
                change.conflicts.append((key, held[1], event.source))
        for statement in event.consents:
            if self.consents.record(statement):
                change.consents.add(statement.channel)
                change.touch("consent")
        self.aggregates.add(event.activity, stamp)
        change.aggregates = True
        if change.facets is not None:
            change.facets.update(facets_of(event.activity))
        self.seen(event.timestamp)
        change.events.append(event)

    def seen(self, moment: datetime | None) -> None:
        if moment is None:
            return
        # (comparisons rather than min and max: this runs for every event)
        if self.first_seen is None or moment < self.first_seen:
            self.first_seen = moment
        if self.last_seen is None or moment > self.last_seen:
            self.last_seen = moment

    def absorb(self, other: ProfileState, policy: MergePolicy, change: Change) -> None:
        """Take in everything another profile holds (a merge)."""
        change.traits |= self.traits.merge(other.traits, policy)
        change.consents |= self.consents.merge(other.consents)
        self.aggregates.merge(other.aggregates)
        change.aggregates = True
        change.facets = None
        self.seen(other.first_seen)
        self.seen(other.last_seen)
        change.merged.append(other.profile_id)

    def clear(self) -> None:
        """Empty the projections (a profile merged away keeps none of its own)."""
        self.traits = TraitBook()
        self.aggregates = Aggregates()
        self.consents = ConsentBook()
        self.computed = {}
        self.first_seen = self.last_seen = None

    def refresh_computed(
        self,
        now: datetime,
        facets: set[str] | None = None,
        registry: TraitRegistry = REGISTRY,
    ) -> tuple[dict[str, Any], list[str]]:
        """Re-evaluate computed traits — only those reading `facets`, when given and the
        previous evaluation is of the same day — and return the changed values and the
        removed keys."""
        same_day = self.evaluated_at is not None and self.evaluated_at.date() == now.date()
        if facets is not None and same_day:
            values, evaluated = evaluate_reading(
                self.aggregates, self.consents.entries, now, self.computed, facets, registry
            )
            # The traits not evaluated again kept their value: compare only the others.
            before = self.computed
            changed = {
                k: values[k]
                for k in evaluated
                if k in values and (k not in before or not same_value(before[k], values[k]))
            }
            removed = sorted(k for k in evaluated if k in before and k not in values)
        else:
            values = evaluate_all(self.aggregates, self.consents.entries, now, registry)
            changed, removed = computed_diff(self.computed, values)
        self.computed = values
        self.evaluated_at = now
        return changed, removed

    def refresh_at(self, now: datetime) -> datetime | None:
        return next_change(self.aggregates, now)


_FACETS_OF_KIND = {
    PAGE: ("pages",),
    PRODUCT_VIEW: ("products",),
    CART_ADD: ("carts",),
    ORDER: ("orders",),
    EMAIL_SENT: ("emails",),
    EMAIL_OPEN: ("emails", "engagement"),
    EMAIL_CLICK: ("emails", "engagement"),
}


_FACETS: dict[tuple[str, bool, bool], tuple[str, ...]] = {}  # by `facets_of`'s key


def facets_of(activity: Activity) -> tuple[str, ...]:
    """The parts of the aggregates an activity changes (a handful of answers, each
    worked out once: this runs for every event)."""
    key = (activity.kind, bool(activity.timezone or activity.locale), activity.identified)
    found = _FACETS.get(key)
    if found is None:
        found = ("seen", *_FACETS_OF_KIND.get(activity.kind, ()))
        if key[1]:
            found += ("context",)
        if key[2]:
            found += ("identified",)
        _FACETS[key] = found
    return found


def computed_diff(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    changed = {k: v for k, v in after.items() if k not in before or not same_value(before[k], v)}
    removed = sorted(k for k in before if k not in after)
    return changed, removed


def rebuild(
    workspace: str,
    profile_id: str,
    created_at: datetime,
    events: Iterable[IncomingEvent],
    policy: MergePolicy,
) -> ProfileState:
    """A profile's projections from its history alone (order does not matter)."""
    state = ProfileState(workspace, profile_id, created_at)
    scratch = Change()
    for event in events:
        state.apply(event, policy, scratch)
        scratch.events.clear()
    return state
