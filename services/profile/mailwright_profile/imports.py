"""Imports of records (CRM and shop contacts): checking them, and deciding which profile
each belongs to.

`read_records` checks a batch the way a schema would: known trait keys, sizes, ids —
structural problems refuse the whole request, naming each field — and notes values that
are present but unreadable (an email that is not an address, a phone without a country),
which are then treated as missing.

`decide` resolves the batch together with the stored profiles that share a blocking key
with it (`matching.incremental`): each candidate profile is one anchored record, and so
is a record whose email, phone or user id a profile already holds. Records land in an
existing profile (MATCHED), with other records of the batch (MATCHED, or NEW for the
first of them), alone (NEW), or near another in the review band (REVIEW).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailwright.errors import FieldViolation, Violations
from mailwright_profile.identity import Identity, IdentityError, normalize_identity
from mailwright_profile.matching.cluster import FieldEvidence, Link
from mailwright_profile.matching.model import MatchModel
from mailwright_profile.matching.records import TRAIT_KEYS, Record
from mailwright_profile.matching.resolve import Resolution, ResolutionSettings, resolve
from mailwright_profile.normalizers import normalize_country, normalize_date

__all__ = [
    "MAX_RECORDS",
    "Decision",
    "ImportRecord",
    "RecordsInput",
    "Resolved",
    "decide",
    "read_records",
]

MAX_RECORDS = 10_000
MAX_VALUE_CHARS = 1000
FIELDS = tuple(k for k in TRAIT_KEYS if k != "record_id")
NEW_PREFIX = "new:"
PROFILE_PREFIX = "profile:"


@dataclass(frozen=True)
class ImportRecord:
    record_id: str
    fields: Mapping[str, str]
    source: str
    problems: tuple[FieldViolation, ...] = ()

    def identities(self) -> list[Identity]:
        """The deterministic identities the record carries (unreadable ones left out)."""
        found = []
        region = normalize_country(self.fields.get("country"))
        for kind in ("user_id", "email", "phone"):
            value = self.fields.get(kind)
            if value:
                try:
                    found.append(normalize_identity(kind, value, region))
                except IdentityError:
                    continue
        return found

    def message_id(self) -> str:
        """A stable id for the record's import event: the same record imported twice is
        one event."""
        text = "\x1f".join(
            [self.source, self.record_id, *(f"{k}={v}" for k, v in sorted(self.fields.items()))]
        )
        return "import-" + hashlib.sha256(text.encode()).hexdigest()[:32]

    def match_record(self) -> Record:
        return Record.from_mapping({"record_id": NEW_PREFIX + self.record_id, **self.fields})


@dataclass(frozen=True)
class RecordsInput:
    records: tuple[ImportRecord, ...]


def _problems(fields: Mapping[str, str]) -> list[FieldViolation]:
    found = []
    region = normalize_country(fields.get("country"))
    if fields.get("country") and region is None:
        found.append(FieldViolation("fields.country", "is not a country code or name"))
    for kind in ("email", "phone"):
        value = fields.get(kind)
        if value:
            try:
                normalize_identity(kind, value, region)
            except IdentityError as error:
                found.append(FieldViolation(f"fields.{kind}", error.message))
    birth = fields.get("birth_date")
    if birth and normalize_date(birth) is None:
        found.append(FieldViolation("fields.birth_date", "is not a date in a known form"))
    return found


def read_records(items: Sequence[tuple[str, Mapping[str, str], str]]) -> RecordsInput:
    """Check a batch of (record_id, fields, source); InvalidArgument naming every field
    at fault when it cannot be read at all."""
    problems = Violations()
    if not items:
        problems.add("records", "give at least one record")
    if len(items) > MAX_RECORDS:
        problems.add("records", f"more than {MAX_RECORDS} records in one call")
        problems.raise_if_any()
    seen: dict[str, int] = {}
    records = []
    for index, (record_id, fields, source) in enumerate(items):
        where = f"records[{index}]"
        if not record_id.strip():
            problems.add(f"{where}.record_id", "is required")
        elif len(record_id) > 255:
            problems.add(f"{where}.record_id", "longer than 255 characters")
        elif record_id in seen:
            problems.add(f"{where}.record_id", f"repeats records[{seen[record_id]}]")
        seen.setdefault(record_id, index)
        if len(source) > 64:
            problems.add(f"{where}.source", "longer than 64 characters")
        for key, value in fields.items():
            if key not in FIELDS:
                problems.add(
                    f'{where}.fields["{key[:64]}"]',
                    f"is not a standard trait key ({', '.join(FIELDS)})",
                )
            elif len(value) > MAX_VALUE_CHARS:
                problems.add(f"{where}.fields.{key}", f"longer than {MAX_VALUE_CHARS} characters")
        clean = {k: v.strip() for k, v in fields.items() if k in FIELDS and v.strip()}
        records.append(
            ImportRecord(
                record_id.strip(), clean, source.strip() or "import", tuple(_problems(clean))
            )
        )
    problems.raise_if_any()
    return RecordsInput(tuple(records))


@dataclass(frozen=True)
class Candidate:
    """A stored profile as one match record."""

    profile_id: str
    record: Record


class Decision:
    MATCHED = "matched"
    NEW = "new"
    REVIEW = "review"


@dataclass
class Resolved:
    """What became of one record."""

    record: ImportRecord
    decision: str
    cluster: int
    existing: str | None = None  # the stored profile it belongs to
    leader: str | None = None  # the record of the batch whose profile it joins
    score: float = 0.0
    evidence: list[dict[str, Any]] = field(default_factory=list)
    review_with: str | None = None  # a record id, or PROFILE_PREFIX + a profile id


@dataclass
class Decisions:
    records: list[Resolved]
    resolution: Resolution
    review: list[tuple[str, str, float, list[dict[str, Any]]]]  # match ids, score, evidence


def evidence_json(items: Sequence[FieldEvidence]) -> list[dict[str, Any]]:
    return [
        {
            "field": e.comparison,
            "left_value": e.left_value,
            "right_value": e.right_value,
            "level": e.label,
            "weight": e.weight if e.weight != float("inf") else 1000.0,
        }
        for e in items
    ]


def _path_score(links: Sequence[Link]) -> tuple[float, list[dict[str, Any]]]:
    if not links:
        return 1.0, []
    weakest = min(link.probability for link in links)
    return weakest, evidence_json(links[0].evidence)


def decide(
    batch: RecordsInput,
    candidates: Sequence[Candidate],
    owned: Mapping[str, str],
    settings: ResolutionSettings,
    model: MatchModel | None,
) -> Decisions:
    """Which profile each record belongs to (see the module docstring). `owned` maps a
    record id to the stored profile that holds one of its identities."""
    records = [r.match_record() for r in batch.records]
    anchors: list[str | None] = [owned.get(r.record_id) for r in batch.records]
    for candidate in candidates:
        values = candidate.record.as_dict()
        values["record_id"] = PROFILE_PREFIX + candidate.profile_id
        records.append(Record.from_mapping(values))
        anchors.append(candidate.profile_id)
    resolution = resolve(records, settings, model=model, anchors=anchors)
    clustering = resolution.clustering
    cluster_of = {
        rid: index for index, members in enumerate(clustering.clusters) for rid in members
    }
    anchor_record: dict[int, str] = {}
    for record, anchor in zip(records, anchors, strict=True):
        if anchor is not None:
            anchor_record.setdefault(cluster_of[record.record_id], record.record_id)
    leaders: dict[int, str] = {}
    review_of: dict[str, tuple[float, str, list[dict[str, Any]]]] = {}
    for pair in resolution.review:
        for mine, other in ((pair.left, pair.right), (pair.right, pair.left)):
            best = review_of.get(mine)
            if best is None or pair.probability > best[0]:
                review_of[mine] = (pair.probability, other, evidence_json(pair.evidence))
    found: list[Resolved] = []
    for record, item in zip(records, batch.records, strict=False):
        cluster = cluster_of[record.record_id]
        anchor = anchors[len(found)]
        resolved = Resolved(item, Decision.NEW, cluster)
        holder = anchor_record.get(cluster)
        if anchor is not None:
            resolved.decision, resolved.existing, resolved.score = Decision.MATCHED, anchor, 1.0
            resolved.evidence = [{"field": "identity", "level": "exact", "weight": 1000.0}]
        elif holder is not None:
            links = resolution.explain(record.record_id, holder) or ()
            resolved.decision = Decision.MATCHED
            resolved.existing = _anchor_of(holder, batch, owned)
            resolved.score, resolved.evidence = _path_score(links)
        elif cluster in leaders:
            links = resolution.explain(record.record_id, leaders[cluster]) or ()
            resolved.decision, resolved.leader = (
                Decision.MATCHED,
                leaders[cluster][len(NEW_PREFIX) :],
            )
            resolved.score, resolved.evidence = _path_score(links)
        else:
            leaders[cluster] = record.record_id
            near = review_of.get(record.record_id)
            if near is not None:
                resolved.decision = Decision.REVIEW
                resolved.score, other, resolved.evidence = near
                resolved.review_with = other.removeprefix(NEW_PREFIX)
        found.append(resolved)
    review = [
        (pair.left, pair.right, pair.probability, evidence_json(pair.evidence))
        for pair in resolution.review
    ]
    return Decisions(found, resolution, review)


def _anchor_of(holder: str, batch: RecordsInput, owned: Mapping[str, str]) -> str:
    if holder.startswith(PROFILE_PREFIX):
        return holder[len(PROFILE_PREFIX) :]
    return owned[holder[len(NEW_PREFIX) :]]


@dataclass(frozen=True)
class RecordOutcome:
    record_id: str
    profile_id: str  # "" when not known (a dry run's new profile)
    decision: str
    score: float
    evidence: list[dict[str, Any]]
    violations: tuple[FieldViolation, ...]


@dataclass(frozen=True)
class ResolveOutcome:
    records: list[RecordOutcome]
    comparisons: int
    clusters: int


def outcome(decisions: Decisions, profiles: Mapping[str, str]) -> ResolveOutcome:
    """The answer to a ResolveRecords call: `profiles` maps record ids to the profiles
    they landed in (empty for a dry run)."""
    records = []
    for resolved in decisions.records:
        rid = resolved.record.record_id
        profile = profiles.get(rid) or resolved.existing or ""
        records.append(
            RecordOutcome(
                rid,
                profile,
                resolved.decision,
                resolved.score,
                resolved.evidence,
                resolved.record.problems,
            )
        )
    clusters = len({resolved.cluster for resolved in decisions.records})
    return ResolveOutcome(records, decisions.resolution.comparisons, clusters)
