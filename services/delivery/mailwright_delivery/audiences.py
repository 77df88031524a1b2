"""Audience destinations: which segments a provider's audience mirrors, and how pending
membership transitions become the `AudienceChange`s handed to a connector.

Plain data and pure functions; the runner (`audience_runner`) does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mailwright.connectors import AudienceChange, AudienceMember, MemberFailure
from mailwright.connectors.errors import ErrorKind

MAX_SEGMENTS = 100
MAX_TRAITS = 100
MAX_AUDIENCE_NAME = 200
TRAIT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$")
SECTION_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
STANDARD_IDENTITIES = frozenset({"email", "user_id", "anonymous_id", "phone", "device_id"})


class DestinationState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class Op(StrEnum):
    """What a pending row asks of the provider for one member."""

    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True)
class SegmentMapping:
    """A segment a destination follows, and the name its audience has at the provider."""

    segment_id: str
    audience_name: str


@dataclass(frozen=True)
class Destination:
    workspace: str
    id: str
    display_name: str
    connector: str
    connector_config: str
    segments: tuple[SegmentMapping, ...]
    traits: tuple[str, ...]
    state: DestinationState
    created_at: datetime
    updated_at: datetime

    def segment(self, segment_id: str) -> SegmentMapping | None:
        for mapping in self.segments:
            if mapping.segment_id == segment_id:
                return mapping
        return None


@dataclass(frozen=True)
class Claim:
    """Pending rows of one destination and segment taken into one change (leased)."""

    workspace: str
    destination_id: str
    segment_id: str
    change_id: str
    ops: Mapping[str, Op]
    """Profile id → what to do with them."""
    attempts: int


@dataclass(frozen=True)
class ChangePlan:
    """The change to send, and what the host learnt while building it."""

    change: AudienceChange
    missing: tuple[MemberFailure, ...]
    """Members to add whose profile is gone (nothing to send for them)."""
    skipped_removals: tuple[str, ...]
    """Removals not sent: another synced member of the segment holds the same address
    (a merged-away profile), and the provider keys its audience by address."""


def plan_change(
    claim: Claim,
    audience_name: str,
    found: Mapping[str, AudienceMember],
    synced: Mapping[str, AudienceMember],
    address_holders: Mapping[str, str],
) -> ChangePlan:
    """The `AudienceChange` for `claim`.

    `found` are the members as the profile service sees them now (by the claimed profile
    id); `synced` what the provider was told about members being removed (the address it
    knows them by, which outlives an erased profile); `address_holders` maps an address
    to another synced member of the segment that holds it.
    """
    added: list[AudienceMember] = []
    removed: list[AudienceMember] = []
    missing: list[MemberFailure] = []
    skipped: list[str] = []
    for profile_id, op in sorted(claim.ops.items()):
        if op is Op.ADD:
            member = found.get(profile_id)
            if member is None:
                missing.append(MemberFailure(profile_id, ErrorKind.INVALID, "profile not found"))
                continue
            added.append(member)
            continue
        member = synced.get(profile_id) or found.get(profile_id) or AudienceMember(profile_id)
        holder = address_holders.get((member.email or "").lower())
        if holder is not None and holder != profile_id:
            skipped.append(profile_id)
            continue
        removed.append(member)
    change = AudienceChange(
        workspace=claim.workspace,
        segment_id=claim.segment_id,
        segment_name=audience_name,
        change_id=claim.change_id,
        added=tuple(added),
        removed=tuple(removed),
    )
    return ChangePlan(change, tuple(missing), tuple(skipped))


def with_profile_id(member: AudienceMember, profile_id: str) -> AudienceMember:
    """`member` under the id the segment knows (a merged-away id resolves to its
    survivor in the profile service)."""
    if member.profile_id == profile_id:
        return member
    return AudienceMember(profile_id, member.email, member.external_ids, member.traits)


def external_ids(identities: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Provider ids from linked identities typed `<provider>:<kind>` (`hubspot:contact`,
    `salesforce:lead`): the first linked of each provider wins."""
    found: dict[str, str] = {}
    for kind, value in identities:
        if kind in STANDARD_IDENTITIES or ":" not in kind or not value:
            continue
        found.setdefault(kind.split(":", 1)[0], value)
    return found


def retry_delay(
    attempts: int, base: timedelta, cap: timedelta, asked: timedelta | None
) -> timedelta:
    """How long before a failed change is tried again: exponential from `base`, at most
    `cap`, never shorter than what the provider asked for (Retry-After)."""
    delay: timedelta = min(base * (2 ** max(attempts - 1, 0)), cap)
    if asked is not None and asked > delay:
        delay = asked
    return delay
