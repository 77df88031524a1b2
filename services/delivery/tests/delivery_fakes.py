"""Small in-process stand-ins for the profile, segment and render servicers.

Delivery calls those services only through their gRPC contracts; until they land on this
branch, these servicers answer the calls delivery makes, over real gRPC on the same
Platform, from data the test sets up. They implement the contract's meaning for the few
fields delivery reads, nothing more.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import json_format
from starlette.routing import BaseRoute

from mailwright.common.v1 import event_pb2
from mailwright.errors import NotFound, Unavailable
from mailwright.profile.v1 import profile_pb2, profile_pb2_grpc
from mailwright.render.v1 import render_pb2, render_pb2_grpc
from mailwright.runtime.service import Runtime, ServiceDefinition
from mailwright.segment.v1 import segment_pb2, segment_pb2_grpc


@dataclass
class World:
    """What the fake services know, per workspace."""

    profiles: dict[str, profile_pb2.Profile] = field(default_factory=dict)
    events: dict[str, list[event_pb2.Event]] = field(default_factory=dict)
    segments: dict[str, list[str]] = field(default_factory=dict)
    templates: dict[str, tuple[int, int]] = field(default_factory=dict)  # id → (category, version)
    render_calls: int = 0
    profiles_down: bool = False

    def person(
        self,
        profile_id: str,
        email: str,
        *,
        first_name: str = "Ann",
        timezone: str = "",
        consent: int = 0,
        **traits: Any,
    ) -> None:
        profile = profile_pb2.Profile(
            name=f"workspaces/acme/profiles/{profile_id}", profile_id=profile_id
        )
        profile.traits.update({"email": email, "first_name": first_name, **traits})
        if timezone:
            profile.traits.update({"timezone": timezone})
        if consent:
            profile.consents.append(
                profile_pb2.Consent(channel=profile_pb2.CHANNEL_EMAIL, status=consent)
            )
        self.profiles[profile_id] = profile

    def segment(self, name: str, members: Sequence[str]) -> None:
        self.segments[name] = list(members)

    def template(self, name: str, *, marketing: bool = True, version: int = 1) -> None:
        category = (
            render_pb2.TEMPLATE_CATEGORY_MARKETING
            if marketing
            else render_pb2.TEMPLATE_CATEGORY_TRANSACTIONAL
        )
        self.templates[name] = (category, version)


class FakeProfiles(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, world: World) -> None:
        self.world = world

    async def BatchGetProfiles(
        self, request: profile_pb2.BatchGetProfilesRequest, context: Any
    ) -> profile_pb2.BatchGetProfilesResponse:
        if self.world.profiles_down:
            raise Unavailable("profile store is down")
        response = profile_pb2.BatchGetProfilesResponse()
        for name in request.names:
            found = self.world.profiles.get(name.rsplit("/", 1)[-1])
            if found is None:
                response.missing.append(name)
            else:
                response.profiles.append(found)
        return response

    async def GetProfileSchema(
        self, request: profile_pb2.GetProfileSchemaRequest, context: Any
    ) -> profile_pb2.GetProfileSchemaResponse:
        return profile_pb2.GetProfileSchemaResponse()

    async def ListProfileEvents(
        self, request: profile_pb2.ListProfileEventsRequest, context: Any
    ) -> profile_pb2.ListProfileEventsResponse:
        events = self.world.events.get(request.parent.rsplit("/", 1)[-1], [])
        return profile_pb2.ListProfileEventsResponse(events=list(reversed(events)))


class FakeSegments(segment_pb2_grpc.SegmentServiceServicer):
    def __init__(self, world: World) -> None:
        self.world = world

    async def ListMembers(
        self, request: segment_pb2.ListMembersRequest, context: Any
    ) -> segment_pb2.ListMembersResponse:
        segment = request.parent.rsplit("/", 1)[-1]
        if segment not in self.world.segments:
            raise NotFound(f"segment {segment!r} not found")
        members = self.world.segments[segment]
        start = int(request.page_token or 0)
        size = request.page_size or 50
        page = members[start : start + size]
        response = segment_pb2.ListMembersResponse(
            members=[segment_pb2.Member(profile_id=p) for p in page], total_size=len(members)
        )
        if start + size < len(members):
            response.next_page_token = str(start + size)
        return response

    async def ListProfileMemberships(
        self, request: segment_pb2.ListProfileMembershipsRequest, context: Any
    ) -> segment_pb2.ListProfileMembershipsResponse:
        names = [
            f"workspaces/acme/segments/{name}"
            for name, members in self.world.segments.items()
            if request.profile_id in members
        ]
        return segment_pb2.ListProfileMembershipsResponse(segments=names)


class FakeRender(render_pb2_grpc.RenderServiceServicer):
    def __init__(self, world: World) -> None:
        self.world = world

    def _find(self, name: str) -> tuple[int, int]:
        template = name.split("/")[3]
        if template not in self.world.templates:
            raise NotFound(f"template {template!r} not found")
        return self.world.templates[template]

    async def GetTemplate(
        self, request: render_pb2.GetTemplateRequest, context: Any
    ) -> render_pb2.GetTemplateResponse:
        category, version = self._find(request.name)
        return render_pb2.GetTemplateResponse(
            template=render_pb2.Template(
                name=request.name, category=category, published_version=version
            )
        )

    async def GetTemplateVersion(
        self, request: render_pb2.GetTemplateVersionRequest, context: Any
    ) -> render_pb2.GetTemplateVersionResponse:
        category, version = self._find(request.name)
        asked = int(request.name.rsplit("/", 1)[-1])
        if asked > version:
            raise NotFound(f"no version {asked}")
        return render_pb2.GetTemplateVersionResponse(
            version=render_pb2.TemplateVersion(
                name=request.name,
                version=asked,
                state=render_pb2.VERSION_STATE_PUBLISHED,
                content=render_pb2.TemplateContent(category=category),
            )
        )

    async def RenderBatch(
        self, request: render_pb2.RenderBatchRequest, context: Any
    ) -> render_pb2.RenderBatchResponse:
        self._find(request.version)
        self.world.render_calls += 1
        response = render_pb2.RenderBatchResponse()
        template = request.version.split("/")[3]
        for recipient in request.recipients:
            traits = (
                json.loads(recipient.traits_json)
                if recipient.traits_json
                else json_format.MessageToDict(recipient.traits)
            )
            name = html.escape(str(traits.get("first_name", "there")))
            variant = recipient.subject_variant or "default"
            response.results.append(
                render_pb2.RenderResult(
                    send_id=recipient.send_id,
                    message=render_pb2.RenderedMessage(
                        subject=f"[{template}:{variant}] Hello {name}",
                        html=f"<p>Hello {name}</p>",
                        text=f"Hello {name}",
                        headers={"List-Unsubscribe": f"<https://t.example/u/{recipient.send_id}>"},
                        subject_variant=recipient.subject_variant,
                    ),
                )
            )
        return response


class _FakeApp:
    def __init__(self, name: str, servicer: Any, adder: Any, full_name: str) -> None:
        self.name = name
        self._servicer = servicer
        self._adder = adder
        self._full_name = full_name

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        self._adder(self._servicer, server)
        return [self._full_name]

    def http_routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def fake_definitions(world: World) -> list[ServiceDefinition]:
    def profile(_runtime: Runtime) -> _FakeApp:
        return _FakeApp(
            "profile",
            FakeProfiles(world),
            profile_pb2_grpc.add_ProfileServiceServicer_to_server,
            profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name,
        )

    def segment(_runtime: Runtime) -> _FakeApp:
        return _FakeApp(
            "segment",
            FakeSegments(world),
            segment_pb2_grpc.add_SegmentServiceServicer_to_server,
            segment_pb2.DESCRIPTOR.services_by_name["SegmentService"].full_name,
        )

    def render(_runtime: Runtime) -> _FakeApp:
        return _FakeApp(
            "render",
            FakeRender(world),
            render_pb2_grpc.add_RenderServiceServicer_to_server,
            render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name,
        )

    return [
        ServiceDefinition("profile", profile),
        ServiceDefinition("segment", segment),
        ServiceDefinition("render", render),
    ]
