"""The data-quality audit of a workspace's profiles (`mailwright profiles audit`).

What it reports, from one pass over the live profiles and the service's own records:
- per source: events, profiles it sent events for, traits it holds the current value of;
- conflicts: traits two sources disagreed on (recorded as events arrive), by trait;
- stale profiles: not seen for `stale_days` (or never);
- unreadable values: email, phone, country and birth date traits no normaliser reads;
- likely duplicates: profiles sharing a normalised email trait, or a first name, last
  name and birth date, and the merge candidates waiting for review.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mailwright_profile.normalizers import (
    fold_text,
    normalize_country,
    normalize_date,
    normalize_email,
    normalize_phone,
)

__all__ = ["AuditReport", "ConflictCount", "SourceCount", "build_report"]

EXAMPLES = 5


@dataclass
class SourceCount:
    source: str
    events: int = 0
    profiles: int = 0
    traits_held: int = 0


@dataclass
class ConflictCount:
    trait: str
    profiles: int = 0
    disagreements: int = 0
    sources: set[str] = field(default_factory=set)


@dataclass
class AuditReport:
    workspace: str
    profiles: int = 0
    sources: list[SourceCount] = field(default_factory=list)
    conflicts: list[ConflictCount] = field(default_factory=list)
    stale: int = 0
    never_seen: int = 0
    stale_examples: list[str] = field(default_factory=list)
    unreadable: dict[str, int] = field(default_factory=dict)
    duplicate_groups: int = 0
    duplicate_profiles: int = 0
    duplicate_examples: list[list[str]] = field(default_factory=list)
    merge_candidates: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "profiles": self.profiles,
            "sources": [vars(s) for s in self.sources],
            "conflicts": [{**vars(c), "sources": sorted(c.sources)} for c in self.conflicts],
            "stale": {
                "count": self.stale,
                "never_seen": self.never_seen,
                "examples": self.stale_examples,
            },
            "unreadable": self.unreadable,
            "duplicates": {
                "groups": self.duplicate_groups,
                "profiles": self.duplicate_profiles,
                "examples": self.duplicate_examples,
            },
            "merge_candidates": self.merge_candidates,
        }


def _unreadable(traits: Mapping[str, Any]) -> list[str]:
    found = []
    country_text = traits.get("country")
    country = normalize_country(country_text) if isinstance(country_text, str) else None
    if isinstance(country_text, str) and country is None:
        found.append("country")
    email = traits.get("email")
    if isinstance(email, str) and normalize_email(email) is None:
        found.append("email")
    phone = traits.get("phone")
    if isinstance(phone, str) and normalize_phone(phone, country) is None:
        found.append("phone")
    birth = traits.get("birth_date")
    if isinstance(birth, str) and normalize_date(birth) is None:
        found.append("birth_date")
    return found


def _duplicate_keys(traits: Mapping[str, Any]) -> list[str]:
    keys = []
    email = traits.get("email")
    if isinstance(email, str) and (normalised := normalize_email(email)):
        keys.append(f"email:{normalised}")
    names = [
        fold_text(traits.get(k)) if isinstance(traits.get(k), str) else None
        for k in ("first_name", "last_name")
    ]
    birth = traits.get("birth_date")
    born = normalize_date(birth) if isinstance(birth, str) else None
    if names[0] and names[1] and born:
        keys.append(f"person:{names[0]}|{names[1]}|{born}")
    return keys


def build_report(
    workspace: str,
    profiles: Iterable[Any],
    events_per_source: Mapping[str, tuple[int, int]],
    conflict_rows: Iterable[Any],
    merge_candidates: int,
    now: datetime,
    stale_days: int,
) -> AuditReport:
    """The report from the store's rows (see the module docstring). `profiles` yields
    rows with profile_id, traits, trait_meta, created_at and last_seen."""
    report = AuditReport(workspace, merge_candidates=merge_candidates)
    sources = {
        s: SourceCount(s, events, people) for s, (events, people) in events_per_source.items()
    }
    cutoff = now - timedelta(days=stale_days)
    groups: dict[str, list[str]] = {}
    for row in profiles:
        report.profiles += 1
        for _key, meta in (row.trait_meta or {}).items():
            if _key in (row.traits or {}):
                sources.setdefault(meta[1], SourceCount(meta[1])).traits_held += 1
        last_seen = row.last_seen
        if last_seen is None:
            report.never_seen += 1
        if last_seen is None or _aware(last_seen) < cutoff:
            report.stale += 1
            if len(report.stale_examples) < EXAMPLES:
                report.stale_examples.append(row.profile_id)
        for trait in _unreadable(row.traits or {}):
            report.unreadable[trait] = report.unreadable.get(trait, 0) + 1
        for key in _duplicate_keys(row.traits or {}):
            groups.setdefault(key, []).append(row.profile_id)
    conflicts: dict[str, ConflictCount] = {}
    for row in conflict_rows:
        held = conflicts.setdefault(row.key, ConflictCount(row.key))
        held.profiles += 1
        held.disagreements += int(row._mapping["count"])
        held.sources |= set(row.sources)
    duplicated = [sorted(set(ids)) for ids in groups.values() if len(set(ids)) > 1]
    report.duplicate_groups = len(duplicated)
    report.duplicate_profiles = len({p for ids in duplicated for p in ids})
    report.duplicate_examples = duplicated[:EXAMPLES]
    report.sources = sorted(sources.values(), key=lambda s: (-s.events, s.source))
    report.conflicts = sorted(conflicts.values(), key=lambda c: (-c.profiles, c.trait))
    return report


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
