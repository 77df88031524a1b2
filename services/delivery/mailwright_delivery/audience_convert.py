"""Audience destinations between protobuf and the domain, with the checks of input that
need no other service (each problem names its field)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1 import common_pb2
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.errors import Violations
from mailwright.names import RESOURCE_ID, parse
from mailwright_delivery.audiences import (
    MAX_AUDIENCE_NAME,
    MAX_SEGMENTS,
    MAX_TRAITS,
    SECTION_NAME,
    TRAIT_NAME,
    Destination,
    DestinationState,
    SegmentMapping,
)
from mailwright_delivery.store.audience_resync_queries import FailureRecord, SegmentStatus

COLLECTION = "audienceDestinations"
STATE_TO_PB = {
    DestinationState.ACTIVE: pb.AUDIENCE_DESTINATION_STATE_ACTIVE,
    DestinationState.PAUSED: pb.AUDIENCE_DESTINATION_STATE_PAUSED,
}
STATE_FROM_PB = {value: key for key, value in STATE_TO_PB.items()}
SETTABLE = ["display_name", "connector_config", "segments", "traits", "state"]


def _stamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def destination_name(workspace: str, destination_id: str) -> str:
    return f"workspaces/{workspace}/{COLLECTION}/{destination_id}"


def destination_to_proto(destination: Destination) -> pb.AudienceDestination:
    return pb.AudienceDestination(
        name=destination_name(destination.workspace, destination.id),
        display_name=destination.display_name,
        connector=destination.connector,
        connector_config=destination.connector_config,
        segments=[
            pb.AudienceSegment(segment=s.segment_id, audience_name=s.audience_name)
            for s in destination.segments
        ],
        traits=list(destination.traits),
        state=STATE_TO_PB[destination.state],
        create_time=_stamp(destination.created_at),
        update_time=_stamp(destination.updated_at),
    )


def destination_from_proto(
    workspace: str,
    destination_id: str,
    given: pb.AudienceDestination,
    now: datetime,
    created_at: datetime | None = None,
    field: str = "audience_destination",
) -> Destination:
    """A destination from its message; every bad field is reported at once."""
    problems = Violations()
    connector = given.connector.strip()
    if not connector:
        problems.add(f"{field}.connector", "name a connector with an audience sync")
    section = given.connector_config.strip() or connector
    if section and not SECTION_NAME.match(section):
        problems.add(
            f"{field}.connector_config",
            "must be a configuration section name (lower-case letters, digits, '-')",
        )
    if len(given.display_name) > 200:
        problems.add(f"{field}.display_name", "longer than 200 characters")
    segments: list[SegmentMapping] = []
    if not given.segments:
        problems.add(f"{field}.segments", "name at least one segment to sync")
    if len(given.segments) > MAX_SEGMENTS:
        problems.add(f"{field}.segments", f"at most {MAX_SEGMENTS} segments")
    seen: set[str] = set()
    for index, item in enumerate(given.segments):
        where = f"{field}.segments[{index}]"
        segment_id = _segment_id(workspace, item.segment, f"{where}.segment", problems)
        if segment_id is None:
            continue
        if segment_id in seen:
            problems.add(f"{where}.segment", f"segment {segment_id!r} is listed twice")
            continue
        seen.add(segment_id)
        audience_name = item.audience_name.strip() or segment_id
        if len(audience_name) > MAX_AUDIENCE_NAME:
            problems.add(f"{where}.audience_name", f"longer than {MAX_AUDIENCE_NAME} characters")
        segments.append(SegmentMapping(segment_id, audience_name))
    if len(given.traits) > MAX_TRAITS:
        problems.add(f"{field}.traits", f"at most {MAX_TRAITS} traits")
    for index, trait in enumerate(given.traits):
        if not TRAIT_NAME.match(trait):
            problems.add(f"{field}.traits[{index}]", f"{trait!r} is not a trait name")
    state = DestinationState.ACTIVE
    if given.state:
        found = STATE_FROM_PB.get(given.state)
        if found is None:
            problems.add(f"{field}.state", "must be ACTIVE or PAUSED")
        else:
            state = found
    problems.raise_if_any()
    return Destination(
        workspace=workspace,
        id=destination_id,
        display_name=given.display_name,
        connector=connector,
        connector_config=section,
        segments=tuple(segments),
        traits=tuple(dict.fromkeys(given.traits)),
        state=state,
        created_at=created_at or now,
        updated_at=now,
    )


def _segment_id(workspace: str, value: str, field: str, problems: Violations) -> str | None:
    value = value.strip()
    if value.startswith("workspaces/"):
        pieces = value.split("/")
        if len(pieces) != 4 or pieces[2] != "segments":
            problems.add(field, "must be a segment id or workspaces/{workspace}/segments/{id}")
            return None
        name = parse(value, field, "segments")
        if name.workspace != workspace:
            problems.add(field, "names a segment of another workspace")
            return None
        return name.id
    if not value or not RESOURCE_ID.match(value) or len(value) > 63:
        problems.add(field, "must be a segment id (1-63 letters, digits, '-', '_' or '.')")
        return None
    return value


def status_to_proto(
    name: str,
    destination: Destination,
    statuses: dict[str, SegmentStatus],
    failures: list[FailureRecord],
) -> pb.AudienceSyncStatus:
    message = pb.AudienceSyncStatus(name=name)
    for mapping in destination.segments:
        found = statuses.get(mapping.segment_id)
        item = pb.AudienceSegmentStatus(segment=mapping.segment_id)
        if found is not None:
            item.synced_members = found.synced_members
            item.pending = found.pending
            item.added = found.added
            item.removed = found.removed
            item.failed = found.failed
            item.last_error = found.last_error
            if found.last_sync_at is not None:
                item.last_sync_time.FromDatetime(found.last_sync_at)
            item.resync_state = (
                pb.RESYNC_STATE_RUNNING if found.resync_running else pb.RESYNC_STATE_IDLE
            )
            item.resync_progress.CopyFrom(
                common_pb2.Progress(done=found.resync_done, total=found.resync_total)
            )
        else:
            item.resync_state = pb.RESYNC_STATE_IDLE
        message.segments.append(item)
    for failure in failures:
        message.failures.append(
            pb.AudienceMemberFailure(
                segment=failure.segment_id,
                profile_id=failure.profile_id,
                kind=failure.kind,
                detail=failure.detail,
                failure_time=_stamp(failure.failed_at),
            )
        )
    return message
