"""Protobuf in and out: profiles, identities, merges, consents and the bus messages.

The servicer and the store's outbox both speak protobuf through this module, so the
contract (`mailwright.profile.v1`) is read and written in one place.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.names import resource_name, workspace_name
from mailwright.profile.v1 import profile_pb2
from mailwright_profile.computed.registry import REGISTRY, TraitRegistry
from mailwright_profile.events import IncomingEvent
from mailwright_profile.identity import Identity, MergePolicy
from mailwright_profile.imports import ResolveOutcome
from mailwright_profile.normalizers import normalize_email, parse_timestamp
from mailwright_profile.profile_state import Change, ProfileState
from mailwright_profile.views import (
    CandidateView,
    IdentityLink,
    MergeView,
    ProfileView,
    RefusalView,
)

__all__ = [
    "COMPUTED_PREFIX",
    "consent_proto",
    "email_hashes",
    "encode_changed",
    "encode_deleted",
    "encode_scored",
    "merge_proto",
    "policy_proto",
    "profile_name",
    "profile_proto",
    "resolution_proto",
    "timestamp",
]

COMPUTED_PREFIX = "computed_traits."
_STATUS = {
    "subscribed": profile_pb2.CONSENT_STATUS_SUBSCRIBED,
    "unsubscribed": profile_pb2.CONSENT_STATUS_UNSUBSCRIBED,
    "pending": profile_pb2.CONSENT_STATUS_PENDING,
}
_CHANNEL = {"email": profile_pb2.CHANNEL_EMAIL}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime) -> Timestamp:
    """The Timestamp of an aware datetime (a naive one is taken as local time, as
    `datetime.astimezone` does); exact to the microsecond."""
    if value.tzinfo is None:
        value = value.astimezone(UTC)
    since = value - _EPOCH
    return Timestamp(seconds=since.days * 86400 + since.seconds, nanos=since.microseconds * 1000)


@functools.lru_cache(maxsize=4)
def _batch_time(value: datetime) -> Timestamp:
    """`timestamp` of a batch's time, shared by its messages (a message copies it)."""
    return timestamp(value)


def profile_name(workspace: str, profile_id: str) -> str:
    return resource_name(workspace, "profiles", profile_id)


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    fill_struct(struct, values)
    return struct


def fill_struct(struct: struct_pb2.Struct, values: Mapping[str, Any]) -> None:
    """Put JSON-like values in a Struct, as `Struct.update` does (same values, same
    errors) but with the common types tested first and no per-field method calls."""
    fields = struct.fields
    for key, value in values.items():
        _set_value(fields[key], value)


def _set_value(target: struct_pb2.Value, value: Any) -> None:
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is float or kind is int:
        target.number_value = value
    elif kind is bool:
        target.bool_value = value
    elif value is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif kind is dict:
        if value:
            fill_struct(target.struct_value, value)
        else:
            target.struct_value.Clear()  # present, and empty
    elif kind is list or kind is tuple:
        if value:
            add = target.list_value.values.add
            for item in value:
                _set_value(add(), item)
        else:
            target.list_value.Clear()
    else:  # subclasses of the types above, Structs, ListValues; the rest is refused
        holder = struct_pb2.Struct()
        holder.update({"": value})
        target.CopyFrom(holder.fields[""])


def linked_identity(link: IdentityLink) -> profile_pb2.LinkedIdentity:
    return profile_pb2.LinkedIdentity(
        identity=common_pb2.Identity(type=link.identity.type, value=link.identity.value),
        source=link.source,
        link_time=timestamp(link.linked_at),
        message_id=link.message_id,
    )


def consent_proto(channel: str, entry: Mapping[str, Any]) -> profile_pb2.Consent:
    proof = entry.get("proof") or {}
    consent = profile_pb2.Consent(
        channel=_CHANNEL.get(channel, profile_pb2.CHANNEL_UNSPECIFIED),
        status=_STATUS.get(str(entry.get("status")), profile_pb2.CONSENT_STATUS_UNSPECIFIED),
        source=str(entry.get("source", "")),
        proof=profile_pb2.ConsentProof(
            ip=str(proof.get("ip", "")),
            user_agent=str(proof.get("user_agent", "")),
            form=str(proof.get("form", "")),
            message=str(proof.get("message", "")),
            text=str(proof.get("text", "")),
        ),
    )
    moment = parse_timestamp(entry.get("time"))
    if moment is not None:
        consent.update_time.CopyFrom(timestamp(moment))
    return consent


def profile_proto(
    view: ProfileView, now: datetime, registry: TraitRegistry = REGISTRY
) -> profile_pb2.Profile:
    """The Profile resource, computed traits evaluated at `now`."""
    profile = profile_pb2.Profile(
        name=profile_name(view.workspace, view.profile_id),
        profile_id=view.profile_id,
        version=view.version,
        identities=[linked_identity(link) for link in view.identities],
        consents=[consent_proto(c, e) for c, e in sorted(view.consents.items())],
        create_time=timestamp(view.created_at),
        update_time=timestamp(view.updated_at),
        merged_profiles=[profile_name(view.workspace, p) for p in view.merged_profiles],
    )
    profile.traits.SetInParent()  # present even when empty, as ever
    fill_struct(profile.traits, view.traits)
    profile.computed_traits.SetInParent()
    fill_struct(profile.computed_traits, view.computed_traits(now, registry))
    if view.first_seen is not None:
        profile.first_seen_time.CopyFrom(timestamp(view.first_seen))
    if view.last_seen is not None:
        profile.last_seen_time.CopyFrom(timestamp(view.last_seen))
    return profile


def _evidence(items: Iterable[Mapping[str, Any]]) -> list[profile_pb2.MatchEvidence]:
    return [
        profile_pb2.MatchEvidence(
            field=str(item.get("field", "")),
            left_value=str(item.get("left_value") or ""),
            right_value=str(item.get("right_value") or ""),
            level=str(item.get("level", "")),
            weight=float(item.get("weight", 0.0)),
        )
        for item in items
    ]


def merge_proto(view: MergeView) -> profile_pb2.Merge:
    merge = profile_pb2.Merge(
        name=resource_name(view.workspace, "merges", view.merge_id),
        kept_profile=profile_name(view.workspace, view.kept_id),
        absorbed_profile=profile_name(view.workspace, view.absorbed_id),
        reason=int(view.reason),  # type: ignore[arg-type]
        shared_identities=[common_pb2.Identity(type=i.type, value=i.value) for i in view.shared],
        evidence=_evidence(view.evidence),
        score=view.score,
        message_id=view.message_id,
        create_time=timestamp(view.created_at),
        actor=view.actor,
    )
    if view.unmerged_at is not None:
        merge.unmerge_time.CopyFrom(timestamp(view.unmerged_at))
    return merge


def refusal_proto(workspace: str, view: RefusalView) -> profile_pb2.RefusedMerge:
    return profile_pb2.RefusedMerge(
        profile=profile_name(workspace, view.profile_id),
        other_profile=profile_name(workspace, view.other_id) if view.other_id else "",
        message_id=view.message_id,
        reason=view.reason,
        create_time=timestamp(view.created_at),
    )


def candidate_proto(workspace: str, view: CandidateView) -> profile_pb2.MergeCandidate:
    return profile_pb2.MergeCandidate(
        left_profile=profile_name(workspace, view.left_id),
        right_profile=profile_name(workspace, view.right_id),
        score=view.score,
        evidence=_evidence(view.evidence),
        create_time=timestamp(view.created_at),
    )


def policy_proto(workspace: str, policy: MergePolicy) -> profile_pb2.MergePolicy:
    return profile_pb2.MergePolicy(
        name=f"{workspace_name(workspace)}/mergePolicy",
        unique_identity_types=list(policy.unique_identity_types),
        source_priority=list(policy.source_priority),
        auto_merge_threshold=policy.auto_merge_threshold,
        review_threshold=policy.review_threshold,
    )


def event_with_profile(payload: bytes, profile_id: str) -> event_pb2.Event:
    event = event_pb2.Event.FromString(payload)
    event.profile_id = profile_id
    return event


def encode_changed(
    state: ProfileState,
    change: Change,
    computed: Mapping[str, Any],
    removed_computed: Iterable[str],
    now: datetime,
    unmerged_from: str = "",
) -> bytes:
    """`ProfileChanged` for one profile's change (see docs/profiles.md, bus messages)."""
    message = profile_pb2.ProfileChanged(
        workspace=state.workspace,
        profile_id=state.profile_id,
        version=state.version,
        removed_traits=sorted(k for k in change.traits if k not in state.traits.values)
        + [COMPUTED_PREFIX + k for k in removed_computed],
        merged_profile_ids=list(change.merged),
        unmerged_from_profile_id=unmerged_from,
        consents=[consent_proto(c, state.consents.entries[c]) for c in sorted(change.consents)],
        identities=[common_pb2.Identity(type=i.type, value=i.value) for i in change.identities],
        occur_time=_batch_time(now),
    )
    changed = {k: state.traits.values[k] for k in change.traits if k in state.traits.values}
    if changed:
        fill_struct(message.traits, changed)
    if computed:
        fill_struct(message.computed_traits, computed)
    return message.SerializeToString() + _applied_events(change.events, state.profile_id)


def _length_delimited(field: Any) -> bytes:
    """The tag of a length-delimited (message or string) field, as on the wire."""
    return _varint(field.number << 3 | 2)


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


_EVENTS_TAG = _length_delimited(profile_pb2.ProfileChanged.DESCRIPTOR.fields_by_name["events"])
_PROFILE_ID_TAG = _length_delimited(event_pb2.Event.DESCRIPTOR.fields_by_name["profile_id"])


def _applied_events(events: Iterable[IncomingEvent], profile_id: str) -> bytes:
    """`ProfileChanged.events` as on the wire: each event's bytes as they came, followed
    by its `profile_id` field. A field that comes again replaces the earlier value when
    parsed, so each parses as a copy of the event with `profile_id` set; copying and
    serialising every event again took a fifth of `encode_changed`."""
    encoded = profile_id.encode()
    tail = _PROFILE_ID_TAG + _varint(len(encoded)) + encoded
    parts: list[bytes] = []
    for event in events:
        payload = event.payload
        parts += (_EVENTS_TAG, _varint(len(payload) + len(tail)), payload, tail)
    return b"".join(parts)


def email_hashes(identities: Iterable[Identity], values: Iterable[Any]) -> list[str]:
    """SHA-256 (hex) of every email address a person held, each in two forms: lower-cased
    as written, and as its provider reads it (Gmail dots and `+tags` removed)."""
    emails = {i.value for i in identities if i.type == "email"}
    for value in values:
        if isinstance(value, str):
            for form in (normalize_email(value), normalize_email(value, provider_rules=False)):
                if form:
                    emails.add(form)
    return sorted(hashlib.sha256(e.encode()).hexdigest() for e in emails)


def encode_deleted(
    workspace: str, profile_id: str, hashes: Iterable[str], merged: Iterable[str], now: datetime
) -> bytes:
    return profile_pb2.ProfileDeleted(
        workspace=workspace,
        profile_id=profile_id,
        email_hashes=list(hashes),
        merged_profile_ids=list(merged),
        occur_time=timestamp(now),
    ).SerializeToString()


_DECISIONS = {
    "matched": profile_pb2.MATCH_DECISION_MATCHED,
    "new": profile_pb2.MATCH_DECISION_NEW,
    "review": profile_pb2.MATCH_DECISION_REVIEW,
}


def resolution_proto(workspace: str, result: ResolveOutcome) -> profile_pb2.ResolveRecordsResponse:
    return profile_pb2.ResolveRecordsResponse(
        resolutions=[
            profile_pb2.RecordResolution(
                record_id=item.record_id,
                profile=profile_name(workspace, item.profile_id) if item.profile_id else "",
                decision=_DECISIONS[item.decision],
                score=item.score,
                evidence=_evidence(item.evidence),
                violations=[
                    common_pb2.FieldViolation(field=v.field, description=v.description)
                    for v in item.violations
                ],
            )
            for item in result.records
        ],
        comparisons=result.comparisons,
        clusters=result.clusters,
    )


def encode_scored(
    workspace: str,
    profile_id: str,
    version: int,
    changed: Mapping[str, Any],
    removed: Iterable[str],
    now: datetime,
) -> bytes:
    """`ProfileChanged` for scores the predictive scorers wrote: the changed computed
    traits, and those cleared as `computed_traits.<key>` in `removed_traits`."""
    message = profile_pb2.ProfileChanged(
        workspace=workspace,
        profile_id=profile_id,
        version=version,
        removed_traits=[COMPUTED_PREFIX + k for k in sorted(removed)],
        occur_time=timestamp(now),
    )
    if changed:
        message.computed_traits.CopyFrom(_struct(changed))
    return message.SerializeToString()
