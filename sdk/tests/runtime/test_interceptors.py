"""Which workspaces a request names: every string field, repeated and nested ones too."""

from __future__ import annotations

from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.interceptors import named_workspaces


def test_repeated_names_are_all_checked() -> None:
    request = profile_pb2.BatchGetProfilesRequest(
        parent="workspaces/acme",
        names=["workspaces/acme/profiles/p1", "workspaces/globex/profiles/p2"],
    )
    assert named_workspaces(request) == {"acme", "globex"}


def test_names_inside_repeated_messages_are_checked() -> None:
    request = profile_pb2.ResolveRecordsRequest(
        parent="workspaces/acme",
        records=[profile_pb2.Record(record_id="r1", source="workspaces/globex")],
    )
    assert named_workspaces(request) == {"acme", "globex"}
