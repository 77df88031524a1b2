"""Bad input gets a clear error naming the field and position; nothing is saved."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from mailwright.segment.v1 import rule_pb2, segment_pb2

WS = "workspaces/acme"


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return {v.field: v.description for v in bad.field_violations}
    return {}


async def refused(call, request, code=grpc.StatusCode.INVALID_ARGUMENT):  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(request)
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def create(segment_id: str, text: str = "", rule: rule_pb2.Rule | None = None, **fields):  # type: ignore[no-untyped-def]
    segment = segment_pb2.Segment(rule_text=text, **fields)
    if rule is not None:
        segment.rule.CopyFrom(rule)
    return segment_pb2.CreateSegmentRequest(parent=WS, segment_id=segment_id, segment=segment)


async def assert_not_saved(stub, segment_id: str) -> None:  # type: ignore[no-untyped-def]
    await refused(
        stub.GetSegment,
        segment_pb2.GetSegmentRequest(name=f"{WS}/segments/{segment_id}"),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_a_syntax_error_names_rule_text_line_and_column(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    error = await refused(
        stub.CreateSegment, create("bad", 'trait country = "FR" and\n  event Order')
    )
    found = violations(error)
    assert list(found) == ["segment.rule_text"]
    assert found["segment.rule_text"].startswith(
        '2:9: unexpected "Order"; expected a double-quoted'
    )
    await assert_not_saved(stub, "bad")


async def test_a_type_error_is_refused_with_its_position(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    error = await refused(
        sqlite_service.stub.CreateSegment,
        create("bad", 'event "Order Completed" and sum(currency) of event "Order Completed" > 3'),
    )
    message = violations(error)["segment.rule_text"]
    assert message.startswith("1:33: sum(currency) needs a number")


async def test_a_rule_too_deep_is_refused(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    text = "not " * 10 + 'trait country = "FR"'
    error = await refused(sqlite_service.stub.CreateSegment, create("deep", text))
    assert "11 levels deep; the limit is 10" in violations(error)["segment.rule_text"]


async def test_a_rule_too_wide_is_refused(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    text = " or ".join(f"trait n = {i}" for i in range(101))
    error = await refused(sqlite_service.stub.CreateSegment, create("wide", text))
    assert "101 conditions; the limit is 100" in violations(error)["segment.rule_text"]


async def test_a_window_past_the_event_log_retention_is_refused(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    error = await refused(
        sqlite_service.stub.CreateSegment,
        create("old", 'event "Order Completed" in last 1000 days'),
    )
    assert "400 days" in violations(error)["segment.rule_text"]


async def test_an_invalid_tree_names_the_protobuf_field(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    rule = rule_pb2.Rule(
        event_count=rule_pb2.EventCount(
            event="", operator=rule_pb2.OPERATOR_GREATER_OR_EQUAL, count=1
        )
    )
    error = await refused(sqlite_service.stub.CreateSegment, create("tree", rule=rule))
    assert "segment.rule.event_count.event" in violations(error)


async def test_a_reference_to_an_unknown_segment_is_refused(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    error = await refused(sqlite_service.stub.CreateSegment, create("ref", 'in segment "nope"'))
    assert 'unknown segment "nope"' in violations(error)["segment.rule_text"]


async def test_a_cycle_through_segment_references_is_refused(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    await stub.CreateSegment(create("a", 'trait country = "FR"'))
    await stub.CreateSegment(create("b", 'in segment "a"'))
    error = await refused(
        stub.UpdateSegment,
        segment_pb2.UpdateSegmentRequest(
            segment=segment_pb2.Segment(name=f"{WS}/segments/a", rule_text='in segment "b"'),
            update_mask=["rule_text"],
        ),
    )
    assert 'cycle: "a" -> "b" -> "a"' in violations(error)["segment.rule_text"]
    current = await stub.GetSegment(segment_pb2.GetSegmentRequest(name=f"{WS}/segments/a"))
    assert (current.segment.version, current.segment.rule_text) == (1, 'trait country = "FR"')


async def test_a_segment_of_another_workspace_is_refused(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    await refused(
        stub.GetSegment,
        segment_pb2.GetSegmentRequest(name="workspaces/other/segments/a"),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(
        stub.CreateSegment,
        segment_pb2.CreateSegmentRequest(
            parent=WS,
            segment_id="x",
            segment=segment_pb2.Segment(
                name="workspaces/other/segments/x", rule_text='trait country = "FR"'
            ),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    stream = stub.WatchMembership(
        segment_pb2.WatchMembershipRequest(parent=WS, segments=["workspaces/other/segments/a"])
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await anext(aiter(stream))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_segment_ids_and_details_are_checked(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    error = await refused(stub.CreateSegment, create("Bad_Id", 'trait country = "FR"'))
    assert "segment_id" in violations(error)
    error = await refused(
        stub.CreateSegment, create("ok", 'trait country = "FR"', display_name="x" * 201)
    )
    assert "segment.display_name" in violations(error)
    error = await refused(
        stub.CreateSegment, create("ok", 'trait country = "FR"', tags=["fine", "\u0000bad"])
    )
    assert "segment.tags[1]" in violations(error)


async def test_a_taken_id_is_already_exists(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    await stub.CreateSegment(create("a", 'trait country = "FR"'))
    await refused(
        stub.CreateSegment, create("a", 'trait country = "DE"'), grpc.StatusCode.ALREADY_EXISTS
    )


async def test_a_retried_request_id_gets_the_original_response(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    request = create("a", 'trait country = "FR"')
    request.request_id = "req-1"
    first = await stub.CreateSegment(request)
    again = await stub.CreateSegment(request)
    assert again == first
    other = create("b", 'trait country = "FR"')
    other.request_id = "req-1"
    error = await refused(stub.CreateSegment, other)
    assert "request_id" in violations(error)


async def test_a_referenced_segment_cannot_be_deleted(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    await stub.CreateSegment(create("a", 'trait country = "FR"'))
    await stub.CreateSegment(create("b", 'in segment "a"'))
    error = await refused(
        stub.DeleteSegment,
        segment_pb2.DeleteSegmentRequest(name=f"{WS}/segments/a"),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert '"b"' in error.details()
    await stub.DeleteSegment(segment_pb2.DeleteSegmentRequest(name=f"{WS}/segments/b"))
    await stub.DeleteSegment(segment_pb2.DeleteSegmentRequest(name=f"{WS}/segments/a"))
    await assert_not_saved(stub, "a")


async def test_validate_rule_lists_issues_with_positions(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    broken = await stub.ValidateRule(
        segment_pb2.ValidateRuleRequest(parent=WS, rule_text='trait country = "FR" and')
    )
    (problem,) = broken.issues
    assert (problem.severity, problem.line, problem.column) == (
        segment_pb2.ISSUE_SEVERITY_ERROR,
        1,
        25,
    )
    assert problem.expected
    fine = await stub.ValidateRule(
        segment_pb2.ValidateRuleRequest(parent=WS, rule_text='event  "Rocket Launched"')
    )
    assert fine.rule_text == 'event "Rocket Launched"'
    (warning,) = fine.issues
    assert warning.severity == segment_pb2.ISSUE_SEVERITY_WARNING
    assert (warning.line, warning.column) == (1, 8)
    assert 'event "Rocket Launched" is not in the taxonomy' in warning.message


async def test_a_page_token_is_bound_to_its_filters(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    for i in range(3):
        await stub.CreateSegment(create(f"s{i}", 'trait country = "FR"', tags=["t"]))
    page = await stub.ListSegments(segment_pb2.ListSegmentsRequest(parent=WS, page_size=2, tag="t"))
    assert len(page.segments) == 2
    assert page.next_page_token
    error = await refused(
        stub.ListSegments,
        segment_pb2.ListSegmentsRequest(parent=WS, page_size=2, page_token=page.next_page_token),
    )
    assert "page_token" in violations(error)
    rest = await stub.ListSegments(
        segment_pb2.ListSegmentsRequest(
            parent=WS, page_size=2, tag="t", page_token=page.next_page_token
        )
    )
    assert [s.name.rsplit("/", 1)[-1] for s in rest.segments] == ["s2"]
    await refused(
        stub.ListSegments,
        segment_pb2.ListSegmentsRequest(parent=WS, page_token="not-a-token"),
    )


async def test_oversized_and_out_of_range_requests_are_refused(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    error = await refused(stub.CreateSegment, create("big", 'trait a = "' + "x" * 100_001 + '"'))
    assert "segment.rule_text" in violations(error)
    error = await refused(
        stub.PreviewSegment,
        segment_pb2.PreviewSegmentRequest(parent=WS, rule_text='trait a = "b"', sample_size=5000),
    )
    assert "sample_size" in violations(error)
    error = await refused(
        stub.ExplainMembership,
        segment_pb2.ExplainMembershipRequest(segment=f"{WS}/segments/a", profile_id=""),
    )
    assert "profile_id" in violations(error)


async def test_explaining_an_unknown_person_is_not_found(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    stub = sqlite_service.stub
    await stub.CreateSegment(create("a", 'trait country = "FR"'))
    await refused(
        stub.ExplainMembership,
        segment_pb2.ExplainMembershipRequest(segment=f"{WS}/segments/a", profile_id="ghost"),
        grpc.StatusCode.NOT_FOUND,
    )
