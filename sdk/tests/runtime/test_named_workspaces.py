"""The interceptor finds every workspace a request names, in repeated fields too."""

from __future__ import annotations

from mailwright.runtime.interceptors import named_workspaces
from mailwright.segment.v1 import segment_pb2


def test_repeated_strings_are_read_one_by_one() -> None:
    request = segment_pb2.WatchMembershipRequest(
        parent="workspaces/acme",
        segments=["workspaces/acme/segments/a", "workspaces/other/segments/b"],
    )
    assert named_workspaces(request) == {"acme", "other"}


def test_strings_inside_nested_messages_count() -> None:
    request = segment_pb2.CreateSegmentRequest(
        parent="workspaces/acme",
        segment=segment_pb2.Segment(name="workspaces/evil/segments/x", tags=["a", "b"]),
    )
    assert named_workspaces(request) == {"acme", "evil"}
