"""The registry of computed traits (the built-in definitions are in `definitions.py`).

A computed trait is a pure function of a profile's `Aggregates`, its consents and the
time of reading. The profile service evaluates them when a profile is read (so values
that change with time alone — windows, recency, decay — are right at that moment), when
events change a profile (the values in `profiles.changed`), and on a schedule for
profiles whose windowed values are due to change (`next_change`). Segments and
templates see them under `computed_traits.<key>`.

`docs/profiles.md` lists them from this registry (`python -m
mailwright_profile.computed.docs`); predictive scorers add theirs through
`TraitRegistry.add_scorer_outputs`.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from mailwright_profile.computed.aggregates import (
    Aggregates,
)
from mailwright_profile.computed.definitions import definitions
from mailwright_profile.computed.model import (
    ACTIVE_DAYS,
    AT_RISK_DAYS,
    RECENCY_DAYS,
    WINDOWS,
    Changes,
    ComputedTrait,
    Inputs,
)
from mailwright_profile.normalizers import parse_timestamp

__all__ = [
    "REGISTRY",
    "Changes",
    "ComputedTrait",
    "Inputs",
    "TraitRegistry",
    "evaluate_all",
    "evaluate_reading",
    "next_change",
]


class TraitRegistry:
    """The computed traits of this process: the built-in ones and scorers' outputs."""

    def __init__(self, traits: Iterable[ComputedTrait]) -> None:
        self._traits: dict[str, ComputedTrait] = {}
        self._evaluators: tuple[tuple[str, Callable[[Inputs], Any]], ...] | None = None
        self._reading: dict[frozenset[str], tuple[tuple[str, Callable[[Inputs], Any]], ...]] = {}
        for trait in traits:
            self.add(trait)

    def add(self, trait: ComputedTrait) -> None:
        if trait.key in self._traits:
            raise ValueError(f"computed trait {trait.key!r} is defined twice")
        self._traits[trait.key] = trait
        self._evaluators = None
        self._reading = {}

    def evaluators(self) -> tuple[tuple[str, Callable[[Inputs], Any]], ...]:
        """(key, compute) of every trait evaluated from the aggregates (not the scorers'),
        in registry order; worked out once, again only after `add`."""
        held = self._evaluators
        if held is None:
            held = self._evaluators = tuple(
                (t.key, t.compute) for t in self._traits.values() if t.source == "profile"
            )
        return held

    def evaluators_reading(
        self, facets: frozenset[str]
    ) -> tuple[tuple[str, Callable[[Inputs], Any]], ...]:
        """(key, compute) of the traits evaluated from the aggregates that read any of
        `facets`, in registry order; worked out once per set of facets (a batch sees a
        handful of them), again only after `add`."""
        held = self._reading.get(facets)
        if held is None:
            held = self._reading[facets] = tuple(
                (t.key, t.compute)
                for t in self._traits.values()
                if t.source == "profile" and t.reads & facets
            )
        return held

    def add_scorer_outputs(self, scorer: str, outputs: Iterable[str], description: str) -> None:
        """Declare traits a predictive scorer writes (numbers; stored by the scorer)."""
        for key in outputs:
            self.add(
                ComputedTrait(key, "number", description, Changes.EVENTS, lambda i: None, scorer)
            )

    def add_scorer_output(self, scorer: str, key: str, kind: str, description: str) -> None:
        """Declare one trait a predictive scorer writes, of type `kind` (stored by it)."""
        self.add(ComputedTrait(key, kind, description, Changes.EVENTS, lambda i: None, scorer))

    def __iter__(self) -> Any:
        return iter(self._traits.values())

    def __contains__(self, key: object) -> bool:
        return key in self._traits

    def keys(self) -> list[str]:
        return list(self._traits)


REGISTRY = TraitRegistry(definitions())


def evaluate_all(
    aggregates: Aggregates,
    consents: Mapping[str, Mapping[str, Any]],
    now: datetime,
    registry: TraitRegistry = REGISTRY,
) -> dict[str, Any]:
    """Every computed trait with a value, at `now`."""
    inputs = Inputs(aggregates, consents, now)
    values: dict[str, Any] = {}
    for key, compute in registry.evaluators():
        value = compute(inputs)
        if value is not None:
            values[key] = value
    return values


def evaluate_reading(
    aggregates: Aggregates,
    consents: Mapping[str, Mapping[str, Any]],
    now: datetime,
    previous: Mapping[str, Any],
    facets: Iterable[str],
    registry: TraitRegistry = REGISTRY,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`previous` with the traits that read any of `facets` evaluated again at `now` (what
    `evaluate_all` gives when nothing else changed since `previous` was evaluated; the
    caller re-evaluates everything when the day changed or profiles merged), and the keys
    evaluated again (the others kept their value)."""
    inputs = Inputs(aggregates, consents, now)
    values = dict(previous)
    evaluators = registry.evaluators_reading(frozenset(facets))
    for key, compute in evaluators:
        value = compute(inputs)
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values, tuple(key for key, _ in evaluators)


def next_change(aggregates: Aggregates, now: datetime) -> datetime | None:
    """The first moment after `now` at which a WINDOWS trait changes with time alone:
    a day leaving a window, or the latest order crossing a recency or lifecycle bound."""
    moments: list[datetime] = []
    if aggregates.days:
        # A day leaves a window of `days` on day + `days`, still to come for the days
        # after today - `days`; the earliest of those leaves first (ISO days sort as
        # text). Every such day is after today, so its midnight is after `now`.
        held = sorted(aggregates.days)
        for days, cutoff in _window_cutoffs(now.astimezone(UTC).date()):
            index = bisect.bisect_right(held, cutoff)
            if index < len(held):
                moments.append(_leaves_window(held[index], days))
    last_order = parse_timestamp(aggregates.last_order)
    if last_order is not None:
        for days in (*RECENCY_DAYS, ACTIVE_DAYS, AT_RISK_DAYS):
            moment = last_order + timedelta(days=days + 1)
            if moment > now:
                moments.append(moment)
    future = [m for m in moments if m > now]
    return min(future) if future else None


@functools.lru_cache(maxsize=8)
def _window_cutoffs(today: date) -> tuple[tuple[int, str], ...]:
    """(days, the last ISO day already out of the window) of each of WINDOWS, for a
    reading on `today` (the same for every profile that day)."""
    return tuple((days, (today - timedelta(days=days)).isoformat()) for days in WINDOWS)


@functools.lru_cache(maxsize=4096)
def _leaves_window(day: str, days: int) -> datetime:
    """The midnight (UTC) at which `day` leaves a window of `days` days."""
    return datetime.combine(date.fromisoformat(day) + timedelta(days=days), time.min, UTC)
