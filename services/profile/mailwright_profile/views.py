"""What the store hands back to the API: plain frozen views of its rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from mailwright_profile.computed.aggregates import Aggregates
from mailwright_profile.computed.registry import REGISTRY, TraitRegistry, evaluate_all
from mailwright_profile.identity import Identity

__all__ = [
    "CandidateView",
    "EventRow",
    "Explanation",
    "IdentityLink",
    "MergeReason",
    "MergeView",
    "ProfileView",
    "RefusalView",
]


class MergeReason(IntEnum):
    """Why profiles were joined (the values of `mailwright.profile.v1.MergeReason`)."""

    IDENTIFY = 1
    ALIAS = 2
    SHARED_IDENTITY = 3
    PROBABILISTIC = 4
    MANUAL = 5


@dataclass(frozen=True)
class IdentityLink:
    identity: Identity
    profile_id: str
    home_id: str
    source: str
    linked_at: datetime
    message_id: str


@dataclass(frozen=True)
class ProfileView:
    """A live (root) profile with everything it holds."""

    workspace: str
    profile_id: str
    version: int
    created_at: datetime
    updated_at: datetime
    first_seen: datetime | None
    last_seen: datetime | None
    identities: tuple[IdentityLink, ...]
    traits: Mapping[str, Any]
    trait_meta: Mapping[str, list[str]]
    aggregates: Aggregates
    consents: Mapping[str, Mapping[str, Any]]
    merged_profiles: tuple[str, ...] = ()
    scores: Mapping[str, Any] = field(default_factory=dict)
    """Computed traits written by the predictive scorers (`clv_12m`, `churn_risk`, …)."""

    def computed_traits(self, now: datetime, registry: TraitRegistry = REGISTRY) -> dict[str, Any]:
        """Every computed trait at `now`: those evaluated from the aggregates, and the
        scorers' (see `mailwright_profile.predict.service`)."""
        values = evaluate_all(self.aggregates, self.consents, now, registry)
        values.update(self.scores)
        return values


@dataclass(frozen=True)
class MergeView:
    workspace: str
    merge_id: str
    kept_id: str
    absorbed_id: str
    reason: MergeReason
    shared: tuple[Identity, ...]
    evidence: tuple[Mapping[str, Any], ...]
    score: float
    message_id: str
    actor: str
    created_at: datetime
    unmerged_at: datetime | None = None


@dataclass(frozen=True)
class RefusalView:
    profile_id: str
    other_id: str
    identity_type: str
    reason: str
    message_id: str
    created_at: datetime


@dataclass(frozen=True)
class CandidateView:
    left_id: str
    right_id: str
    score: float
    evidence: tuple[Mapping[str, Any], ...]
    created_at: datetime


@dataclass(frozen=True)
class EventRow:
    """One event of the history: its position (time, id) and the stored payload."""

    occurred_at: datetime
    message_id: str
    profile_id: str
    home_id: str
    payload: bytes = field(repr=False)


@dataclass
class Explanation:
    """Why identities are one profile: its links, the merges that built it (or the path
    of merges between two identities' home profiles), and the refusals."""

    profile_id: str
    same_profile: bool
    links: list[IdentityLink]
    merges: list[MergeView]
    refusals: list[RefusalView]
    homes: dict[str, str] = field(default_factory=dict)  # "type:value" → home profile
