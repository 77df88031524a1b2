"""gRPC servicer of the segment service: protobuf in, catalog call, protobuf out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC
from typing import Any

from mailwright.common.v1 import common_pb2
from mailwright.errors import InvalidArgument
from mailwright.names import parse, parse_workspace, resource_name
from mailwright.rules.check import Diagnostic, Severity
from mailwright.rules.explain import Explanation
from mailwright.rules.proto import to_proto
from mailwright.runtime.db import Database
from mailwright.runtime.requests import RequestLog
from mailwright.runtime.rpc import Context
from mailwright.segment.v1 import segment_pb2, segment_pb2_grpc
from mailwright_segment import paging
from mailwright_segment.catalog import MAX_SAMPLE, RuleInput, SegmentCatalog
from mailwright_segment.definitions import MAX_RULE_TEXT, Segment, path_text
from mailwright_segment.messages import change_message, timestamp
from mailwright_segment.store.memberships import JobRow, LogEntry
from mailwright_segment.values import to_micros
from mailwright_segment.watch import LogHub, follow

UPDATABLE = ("display_name", "description", "rule", "rule_text", "tags")
MAX_PROFILE_ID = 128
MAX_WATCHED = 100


def issue(diagnostic: Diagnostic, rule: Any = None) -> segment_pb2.RuleIssue:
    severity = (
        segment_pb2.ISSUE_SEVERITY_ERROR
        if diagnostic.severity is Severity.ERROR
        else segment_pb2.ISSUE_SEVERITY_WARNING
    )
    found = segment_pb2.RuleIssue(
        severity=severity,
        message=diagnostic.message,
        path=path_text(diagnostic.path, rule) if rule is not None else path_text(diagnostic.path),
    )
    if diagnostic.span is not None:
        found.line, found.column = diagnostic.span.line, diagnostic.span.column
    if diagnostic.code == "syntax":
        found.expected = diagnostic.field
    return found


def segment_message(segment: Segment, members: int) -> segment_pb2.Segment:
    return segment_pb2.Segment(
        name=resource_name(segment.ws, "segments", segment.segment_id),
        display_name=segment.display_name,
        description=segment.description,
        rule=to_proto(segment.rule),
        rule_text=segment.rule_text,
        version=segment.version,
        member_count=members,
        create_time=timestamp(segment.created_at),
        update_time=timestamp(segment.updated_at),
        tags=list(segment.tags),
        warnings=[issue(w, segment.rule) for w in segment.warnings],
    )


def job_message(job: JobRow) -> segment_pb2.RecomputeJob:
    state = {
        "running": segment_pb2.JOB_STATE_RUNNING,
        "succeeded": segment_pb2.JOB_STATE_SUCCEEDED,
        "failed": segment_pb2.JOB_STATE_FAILED,
    }[job.state]
    found = segment_pb2.RecomputeJob(
        name=resource_name(job.ws, "recomputeJobs", job.job_id),
        segment=resource_name(job.ws, "segments", job.segment_id),
        state=state,
        progress=common_pb2.Progress(done=job.done, total=max(job.total, job.done)),
        entered_count=job.entered,
        exited_count=job.exited,
        error=job.error,
        create_time=timestamp(job.created_at),
    )
    if job.ended_at is not None:
        found.end_time.CopyFrom(timestamp(job.ended_at))
    return found


def explain_node(
    explanation: Explanation, rule: Any, path: tuple[int, ...] = ()
) -> segment_pb2.ExplainNode:
    return segment_pb2.ExplainNode(
        path=path_text(path, rule),
        text=explanation.text,
        value=explanation.value,
        detail=explanation.detail,
        children=[
            explain_node(child, rule, (*path, i)) for i, child in enumerate(explanation.children)
        ],
    )


def rule_input(request: Any, field_prefix: str = "") -> RuleInput:
    source = request.WhichOneof("source")
    if source == "rule_text":
        text = request.rule_text
        if not text.strip():
            raise InvalidArgument.field(f"{field_prefix}rule_text", "must not be empty")
        return RuleInput(text=text)
    if source == "rule":
        return RuleInput(proto=request.rule)
    raise InvalidArgument.field(f"{field_prefix}rule_text", "give the rule as rule_text or rule")


def check_profile_id(value: str, field: str = "profile_id") -> str:
    if not value or len(value) > MAX_PROFILE_ID or any(ord(c) < 32 for c in value):
        raise InvalidArgument.field(field, f"must be 1 to {MAX_PROFILE_ID} printable characters")
    return value


class SegmentServicer(segment_pb2_grpc.SegmentServiceServicer):
    def __init__(
        self,
        db: Database,
        catalog: SegmentCatalog,
        requests: RequestLog,
        hub: LogHub,
        jobs_queued: Callable[[], None],
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.requests = requests
        self.hub = hub
        self.jobs_queued = jobs_queued

    # -- definitions --------------------------------------------------------------------
    async def CreateSegment(
        self, request: segment_pb2.CreateSegmentRequest, context: Context
    ) -> segment_pb2.CreateSegmentResponse:
        ws = parse_workspace(request.parent)
        segment = request.segment
        if segment.name and segment.name != resource_name(ws, "segments", request.segment_id):
            raise InvalidArgument.field("segment.name", "must be empty or name segment_id")
        rule = RuleInput(
            text=segment.rule_text, proto=segment.rule if segment.HasField("rule") else None
        )
        if len(rule.text) > MAX_RULE_TEXT:
            raise InvalidArgument.field(
                "segment.rule_text", f"longer than {MAX_RULE_TEXT} characters"
            )

        async def compute() -> segment_pb2.CreateSegmentResponse:
            saved, _job = await self.db.run(
                self.catalog.create,
                ws,
                request.segment_id,
                segment.display_name,
                segment.description,
                tuple(segment.tags),
                rule,
            )
            self.jobs_queued()
            return segment_pb2.CreateSegmentResponse(segment=segment_message(saved, 0))

        return await self.requests.run(
            ws, "CreateSegment", request, segment_pb2.CreateSegmentResponse, compute
        )

    async def GetSegment(
        self, request: segment_pb2.GetSegmentRequest, context: Context
    ) -> segment_pb2.GetSegmentResponse:
        name = parse(request.name, "name", "segments")
        if request.version < 0:
            raise InvalidArgument.field("version", "must not be negative")
        segment, members = await self.db.run(
            self.catalog.get, name.workspace, name.id, request.version
        )
        return segment_pb2.GetSegmentResponse(segment=segment_message(segment, members))

    async def ListSegments(
        self, request: segment_pb2.ListSegmentsRequest, context: Context
    ) -> segment_pb2.ListSegmentsResponse:
        ws = parse_workspace(request.parent)
        size = paging.page_size(request.page_size)
        filters = f"{ws}\x00{request.tag}"
        after = paging.decode(request.page_token, filters) or ""
        found, cursor = await self.db.run(self.catalog.page, ws, str(after), size, request.tag)
        return segment_pb2.ListSegmentsResponse(
            segments=[segment_message(s, n) for s, n in found],
            next_page_token=paging.encode(cursor, filters) if cursor else "",
        )

    async def UpdateSegment(
        self, request: segment_pb2.UpdateSegmentRequest, context: Context
    ) -> segment_pb2.UpdateSegmentResponse:
        name = parse(request.segment.name, "segment.name", "segments")
        mask = list(request.update_mask)
        for i, path in enumerate(mask):
            if path not in UPDATABLE:
                raise InvalidArgument.field(
                    f"update_mask[{i}]", f"{path!r} cannot be updated; use {', '.join(UPDATABLE)}"
                )
        segment = request.segment
        if not mask:
            mask = [f for f in UPDATABLE if _is_set(segment, f)]
        if not mask:
            raise InvalidArgument.field("update_mask", "nothing to update")
        rule = None
        if "rule" in mask or "rule_text" in mask:
            rule = RuleInput(
                text=segment.rule_text if "rule_text" in mask else "",
                proto=segment.rule if "rule" in mask and segment.HasField("rule") else None,
            )

        async def compute() -> segment_pb2.UpdateSegmentResponse:
            saved, members, job = await self.db.run(
                lambda: self.catalog.update(
                    name.workspace,
                    name.id,
                    display_name=segment.display_name if "display_name" in mask else None,
                    description=segment.description if "description" in mask else None,
                    tags=tuple(segment.tags) if "tags" in mask else None,
                    rule=rule,
                )
            )
            if job is not None:
                self.jobs_queued()
            return segment_pb2.UpdateSegmentResponse(segment=segment_message(saved, members))

        return await self.requests.run(
            name.workspace, "UpdateSegment", request, segment_pb2.UpdateSegmentResponse, compute
        )

    async def DeleteSegment(
        self, request: segment_pb2.DeleteSegmentRequest, context: Context
    ) -> segment_pb2.DeleteSegmentResponse:
        name = parse(request.name, "name", "segments")

        async def compute() -> segment_pb2.DeleteSegmentResponse:
            await self.db.run(self.catalog.delete, name.workspace, name.id)
            return segment_pb2.DeleteSegmentResponse()

        return await self.requests.run(
            name.workspace, "DeleteSegment", request, segment_pb2.DeleteSegmentResponse, compute
        )

    # -- rules --------------------------------------------------------------------------
    async def ValidateRule(
        self, request: segment_pb2.ValidateRuleRequest, context: Context
    ) -> segment_pb2.ValidateRuleResponse:
        ws = parse_workspace(request.parent)
        validation = await self.db.run(self.catalog.validate, ws, rule_input(request))
        checked = validation.checked
        rule = checked.rule if checked is not None else None
        response = segment_pb2.ValidateRuleResponse(
            issues=[issue(d, rule) for d in validation.issues]
        )
        if checked is not None:
            response.rule.CopyFrom(to_proto(checked.rule))
            response.rule_text = checked.text
        return response

    async def PreviewSegment(
        self, request: segment_pb2.PreviewSegmentRequest, context: Context
    ) -> segment_pb2.PreviewSegmentResponse:
        ws = parse_workspace(request.parent)
        if not 0 <= request.sample_size <= MAX_SAMPLE:
            raise InvalidArgument.field("sample_size", f"must be between 0 and {MAX_SAMPLE}")
        sample = request.sample_size or 20
        preview = await self.db.run(self.catalog.preview, ws, rule_input(request), sample)
        return segment_pb2.PreviewSegmentResponse(
            count=preview.count,
            sample_profile_ids=preview.sample,
            issues=[issue(w) for w in preview.warnings],
        )

    async def ExplainMembership(
        self, request: segment_pb2.ExplainMembershipRequest, context: Context
    ) -> segment_pb2.ExplainMembershipResponse:
        name = parse(request.segment, "segment", "segments")
        profile_id = check_profile_id(request.profile_id)
        result = await self.db.run(self.catalog.explain, name.workspace, name.id, profile_id)
        response = segment_pb2.ExplainMembershipResponse(
            member=result.member,
            root=explain_node(result.explanation, result.explanation.node),
            evaluate_time=timestamp(result.evaluated_at),
        )
        if result.next_change is not None:
            response.next_change_time.CopyFrom(timestamp(result.next_change))
        return response

    # -- memberships --------------------------------------------------------------------
    async def ListMembers(
        self, request: segment_pb2.ListMembersRequest, context: Context
    ) -> segment_pb2.ListMembersResponse:
        name = parse(request.parent, "parent", "segments")
        size = paging.page_size(request.page_size)
        after = paging.decode(request.page_token, str(name)) or 0
        if not isinstance(after, int):
            raise InvalidArgument.field("page_token", "is not a page token of this list")
        found, total = await self.db.run(self.catalog.members, name.workspace, name.id, after, size)
        token = paging.encode(found[-1][0], str(name)) if len(found) == size else ""
        return segment_pb2.ListMembersResponse(
            members=[
                segment_pb2.Member(profile_id=pid, enter_time=timestamp(at)) for _, pid, at in found
            ],
            next_page_token=token,
            total_size=total,
        )

    async def ListProfileMemberships(
        self, request: segment_pb2.ListProfileMembershipsRequest, context: Context
    ) -> segment_pb2.ListProfileMembershipsResponse:
        ws = parse_workspace(request.parent)
        profile_id = check_profile_id(request.profile_id)
        ids = await self.db.run(self.catalog.profile_segments, ws, profile_id)
        return segment_pb2.ListProfileMembershipsResponse(
            segments=[resource_name(ws, "segments", i) for i in ids]
        )

    async def RecomputeSegment(
        self, request: segment_pb2.RecomputeSegmentRequest, context: Context
    ) -> segment_pb2.RecomputeSegmentResponse:
        name = parse(request.name, "name", "segments")

        async def compute() -> segment_pb2.RecomputeSegmentResponse:
            job = await self.db.run(self.catalog.recompute, name.workspace, name.id)
            self.jobs_queued()
            return segment_pb2.RecomputeSegmentResponse(job=job_message(job))

        return await self.requests.run(
            name.workspace,
            "RecomputeSegment",
            request,
            segment_pb2.RecomputeSegmentResponse,
            compute,
        )

    async def GetRecomputeJob(
        self, request: segment_pb2.GetRecomputeJobRequest, context: Context
    ) -> segment_pb2.GetRecomputeJobResponse:
        name = parse(request.name, "name", "recomputeJobs")
        job = await self.db.run(self.catalog.job, name.workspace, name.id)
        return segment_pb2.GetRecomputeJobResponse(job=job_message(job))

    async def WatchMembership(
        self, request: segment_pb2.WatchMembershipRequest, context: Context
    ) -> AsyncIterator[segment_pb2.WatchMembershipResponse]:
        ws = parse_workspace(request.parent)
        if len(request.segments) > MAX_WATCHED:
            raise InvalidArgument.field("segments", f"at most {MAX_WATCHED} segments")
        wanted: list[str] = []
        for i, segment_name in enumerate(request.segments):
            name = parse(segment_name, f"segments[{i}]", "segments")
            if name.workspace != ws:
                raise InvalidArgument.field(f"segments[{i}]", "must be a segment of parent")
            wanted.append(name.id)
        for segment_id in wanted:
            await self.db.run(self.catalog.get, ws, segment_id)
        since = (
            to_micros(request.start_time.ToDatetime(tzinfo=UTC))
            if request.HasField("start_time")
            else None
        )
        start_id = 0 if since is not None else await self.db.run(self.catalog.last_log_id)

        async def fetch(after: int, at: int | None, limit: int) -> list[LogEntry]:
            return await self.db.run(self.catalog.history, ws, after, at, wanted, limit)

        async for entry in follow(fetch, self.hub, start_id=start_id, since=since):
            yield segment_pb2.WatchMembershipResponse(change=change_message(entry))


def _is_set(segment: segment_pb2.Segment, field: str) -> bool:
    if field == "rule":
        return segment.HasField("rule")
    if field == "tags":
        return bool(segment.tags)
    return bool(getattr(segment, field))
