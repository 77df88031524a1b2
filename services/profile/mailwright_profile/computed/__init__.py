"""Computed traits: the running aggregates of a profile and the registry of definitions.

- `aggregates` — `Aggregates` (kept per profile, order-independent) and `Activity`;
- `registry` — every computed trait, its type and meaning, and `evaluate_all`.
"""

from mailwright_profile.computed.aggregates import Activity, Aggregates
from mailwright_profile.computed.registry import (
    REGISTRY,
    Changes,
    ComputedTrait,
    TraitRegistry,
    evaluate_all,
    next_change,
)

__all__ = [
    "REGISTRY",
    "Activity",
    "Aggregates",
    "Changes",
    "ComputedTrait",
    "TraitRegistry",
    "evaluate_all",
    "next_change",
]
