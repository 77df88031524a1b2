"""Protobuf forms shared by the servicer and the publisher."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.names import resource_name
from mailwright.segment.v1 import segment_pb2
from mailwright_segment.store.memberships import LogEntry
from mailwright_segment.values import from_micros

MEMBERSHIP_TOPIC = "segments.membership"


def timestamp(micros: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(from_micros(micros))
    return stamp


def change_message(entry: LogEntry) -> segment_pb2.MembershipChange:
    return segment_pb2.MembershipChange(
        workspace=entry.ws,
        segment=resource_name(entry.ws, "segments", entry.segment_id),
        profile_id=entry.profile_id,
        transition=segment_pb2.TRANSITION_ENTERED
        if entry.entered
        else segment_pb2.TRANSITION_EXITED,
        occur_time=timestamp(entry.at),
        rule_version=entry.rule_version,
        cause=entry.cause,
    )


def membership_key(entry: LogEntry) -> str:
    """The bus key of a transition: one person's transitions keep their order."""
    return f"{entry.ws}:{entry.profile_id}"
