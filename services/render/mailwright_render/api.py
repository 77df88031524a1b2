"""The gRPC servicer of `mailwright.render.v1.RenderService`.

Glue only: each RPC reads its request into domain objects (`wire`), calls the catalogue
(templates, versions, merge fields), the batch renderer (previews and the delivery path)
or the profile directory, and writes the answer back. Domain errors become statuses in
the gateway interceptor; template errors become INVALID_ARGUMENT with one field
violation per error, naming the part and the line and column.
"""

from __future__ import annotations

import asyncio

from mailwright.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Violations,
)
from mailwright.names import RESOURCE_ID, parse, parse_workspace
from mailwright.render.v1 import render_pb2, render_pb2_grpc
from mailwright.runtime.auth import current_principal
from mailwright.runtime.requests import RequestLog
from mailwright.runtime.rpc import Context
from mailwright_render import wire
from mailwright_render.artefact import CompiledTemplate
from mailwright_render.batch import BatchRenderer
from mailwright_render.catalog import Catalog
from mailwright_render.config import RenderSettings
from mailwright_render.context import Delivery, Recipient
from mailwright_render.errors import Issue, TemplateInvalid
from mailwright_render.pages import next_page_token, page_request
from mailwright_render.profiles import ProfileDirectory
from mailwright_render.records import VersionRecord, VersionState
from mailwright_render.wire_render import (
    EncodedResponse,
    ResponseWriter,
    batch_items,
    message_to_proto,
    recipient_from_proto,
    send_options,
)

pb = render_pb2
MERGE_FIELD_MAP = "mergeFieldMap"


def _template_id(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument.field(field, "is required")
    if not RESOURCE_ID.match(value):
        raise InvalidArgument.field(
            field, "1-128 letters, digits, . _ ~ -, starting and ending with a letter or digit"
        )
    return value


def _version_ref(name: str, field: str) -> tuple[str, str, int]:
    parsed = parse(name, field, "templates", "versions")
    number = parsed.parts[1][1]
    if not number.isdigit() or int(number) < 1 or len(number) > 9:
        raise InvalidArgument.field(field, f"version {number!r} is not a positive number")
    return parsed.workspace, parsed.parts[0][1], int(number)


def _template_or_version(name: str, field: str) -> tuple[str, str, int | None]:
    """`…/templates/t` (version None) or `…/templates/t/versions/n`."""
    if "/versions/" in name:
        return _version_ref(name, field)
    parsed = parse(name, field, "templates")
    return parsed.workspace, parsed.id, None


def _merge_map_workspace(name: str, field: str) -> str:
    prefix, _, last = name.rpartition("/")
    if last != MERGE_FIELD_MAP:
        raise InvalidArgument.field(
            field, f"must look like workspaces/{{workspace}}/{MERGE_FIELD_MAP}"
        )
    return parse_workspace(prefix, field)


class RenderServicer(render_pb2_grpc.RenderServiceServicer):
    def __init__(
        self,
        catalog: Catalog,
        batch: BatchRenderer,
        profiles: ProfileDirectory,
        requests: RequestLog,
        settings: RenderSettings,
    ) -> None:
        self.catalog = catalog
        self.batch = batch
        self.profiles = profiles
        self.requests = requests
        self.settings = settings

    # Templates ----------------------------------------------------------------------

    async def CreateTemplate(
        self, request: pb.CreateTemplateRequest, context: Context
    ) -> pb.CreateTemplateResponse:
        workspace = parse_workspace(request.parent)
        template_id = _template_id(request.template_id, "template_id")
        if not request.HasField("content"):
            raise InvalidArgument.field("content", "is required")
        authored = wire.content_from_proto(
            request.content, template_id, category=request.template.category
        )
        meta = wire.meta_from_proto(request.template.display_name, request.template.description)

        async def create() -> pb.CreateTemplateResponse:
            template, version = await self.catalog.create(workspace, template_id, meta, authored)
            return pb.CreateTemplateResponse(
                template=wire.template_to_proto(template), version=wire.version_to_proto(version)
            )

        return await self.requests.run(
            workspace, "CreateTemplate", request, pb.CreateTemplateResponse, create
        )

    async def UpdateTemplate(
        self, request: pb.UpdateTemplateRequest, context: Context
    ) -> pb.UpdateTemplateResponse:
        name = parse(request.name, "name", "templates")
        authored = (
            wire.content_from_proto(request.content, name.id)
            if request.HasField("content")
            else None
        )
        meta = wire.meta_from_proto(request.display_name, request.description, field="")

        async def update() -> pb.UpdateTemplateResponse:
            template, version = await self.catalog.update(name.workspace, name.id, authored, meta)
            return pb.UpdateTemplateResponse(
                template=wire.template_to_proto(template), version=wire.version_to_proto(version)
            )

        return await self.requests.run(
            name.workspace, "UpdateTemplate", request, pb.UpdateTemplateResponse, update
        )

    async def GetTemplate(
        self, request: pb.GetTemplateRequest, context: Context
    ) -> pb.GetTemplateResponse:
        name = parse(request.name, "name", "templates")
        template = await self.catalog.template(name.workspace, name.id)
        return pb.GetTemplateResponse(template=wire.template_to_proto(template))

    async def ListTemplates(
        self, request: pb.ListTemplatesRequest, context: Context
    ) -> pb.ListTemplatesResponse:
        workspace = parse_workspace(request.parent)
        filters = f"templates:{workspace}"
        page = page_request(request.page_size, request.page_token, filters)
        found = await self.catalog.templates(workspace, page.after, page.size + 1)
        response = pb.ListTemplatesResponse(
            templates=[wire.template_to_proto(t) for t in found[: page.size]]
        )
        if len(found) > page.size:
            response.next_page_token = next_page_token(found[page.size - 1].template_id, filters)
        return response

    async def GetTemplateVersion(
        self, request: pb.GetTemplateVersionRequest, context: Context
    ) -> pb.GetTemplateVersionResponse:
        workspace, template_id, number = _version_ref(request.name, "name")
        version = await self.catalog.version(workspace, template_id, number)
        return pb.GetTemplateVersionResponse(version=wire.version_to_proto(version))

    async def ListTemplateVersions(
        self, request: pb.ListTemplateVersionsRequest, context: Context
    ) -> pb.ListTemplateVersionsResponse:
        name = parse(request.parent, "parent", "templates")
        filters = f"versions:{name}"
        page = page_request(request.page_size, request.page_token, filters)
        before = int(page.after) if page.after and page.after.isdigit() else None
        found = await self.catalog.versions(name.workspace, name.id, before, page.size + 1)
        response = pb.ListTemplateVersionsResponse(
            versions=[wire.version_to_proto(v) for v in found[: page.size]]
        )
        if len(found) > page.size:
            response.next_page_token = next_page_token(str(found[page.size - 1].version), filters)
        return response

    async def PublishTemplate(
        self, request: pb.PublishTemplateRequest, context: Context
    ) -> pb.PublishTemplateResponse:
        workspace, template_id, number = _version_ref(request.name, "name")

        async def publish() -> pb.PublishTemplateResponse:
            try:
                template, version = await self.catalog.publish(workspace, template_id, number)
            except TemplateInvalid as invalid:
                stored = await self.catalog.version(workspace, template_id, number)
                source = stored.authored.source if stored.authored else None
                raise wire.invalid_content(invalid.issues, source) from None
            return pb.PublishTemplateResponse(
                template=wire.template_to_proto(template), version=wire.version_to_proto(version)
            )

        return await self.requests.run(
            workspace, "PublishTemplate", request, pb.PublishTemplateResponse, publish
        )

    async def ValidateTemplate(
        self, request: pb.ValidateTemplateRequest, context: Context
    ) -> pb.ValidateTemplateResponse:
        workspace = parse_workspace(request.parent)
        if not request.HasField("content"):
            raise InvalidArgument.field("content", "is required")
        try:
            authored = wire.content_from_proto(request.content, "validate")
        except InvalidArgument as invalid:
            # Structure the contract can express wrongly is still a validation finding.
            return pb.ValidateTemplateResponse(
                valid=False,
                issues=[
                    pb.TemplateIssue(
                        severity=pb.ISSUE_SEVERITY_ERROR,
                        code="invalid_field",
                        message=f"{v.field}: {v.description}",
                        part=v.field.removeprefix("content."),
                    )
                    for v in invalid.violations
                ],
            )
        issues = await self.catalog.validate(workspace, authored)
        return pb.ValidateTemplateResponse(
            issues=[wire.issue_to_proto(issue) for issue in issues],
            valid=not any(issue.is_error for issue in issues),
        )

    # Rendering ----------------------------------------------------------------------

    async def PreviewRender(
        self, request: pb.PreviewRenderRequest, context: Context
    ) -> pb.PreviewRenderResponse:
        workspace = parse_workspace(request.parent)
        compiled, postal_address, issues = await self._preview_source(request, workspace)
        recipient, delivery = await self._preview_subject(request, workspace)
        options = send_options(request.options)
        rendering = await asyncio.to_thread(
            self.batch.render_one, compiled, postal_address, options, recipient, delivery
        )
        if rendering.email is None:
            if rendering.code.startswith("limit_"):
                raise ResourceExhausted(f"the preview went over a render limit: {rendering.error}")
            raise FailedPrecondition(
                f"the template cannot be rendered for this recipient: {rendering.error}"
            )
        return pb.PreviewRenderResponse(
            message=message_to_proto(rendering.email, rendering.mime),
            issues=[wire.issue_to_proto(issue) for issue in issues],
        )

    async def _preview_source(
        self, request: pb.PreviewRenderRequest, workspace: str
    ) -> tuple[CompiledTemplate, str, tuple[Issue, ...]]:
        which = request.WhichOneof("source")
        if which == "content":
            authored = wire.content_from_proto(request.content, "preview")
            try:
                compiled, issues = await self.catalog.compile(workspace, authored)
            except TemplateInvalid as invalid:
                raise wire.invalid_content(invalid.issues, authored.source) from None
            return compiled, authored.postal_address, issues
        if which != "template":
            raise InvalidArgument.field("template", "give a template (or version) or content")
        owner, template_id, number = _template_or_version(request.template, "template")
        if owner != workspace:
            raise InvalidArgument.field("template", "must be a template of the parent workspace")
        version: VersionRecord = (
            await self.catalog.current(workspace, template_id)
            if number is None
            else await self.catalog.version(workspace, template_id, number)
        )
        if version.state is VersionState.PUBLISHED:
            published = await self.batch.published(workspace, template_id, version.version)
            return published.compiled, published.postal_address, version.warnings
        assert version.authored is not None
        try:
            compiled, issues = await self.catalog.compile(workspace, version.authored)
        except TemplateInvalid as invalid:
            raise wire.invalid_content(invalid.issues, version.authored.source) from None
        return compiled, version.authored.postal_address, issues

    async def _preview_subject(
        self, request: pb.PreviewRenderRequest, workspace: str
    ) -> tuple[Recipient, Delivery]:
        which = request.WhichOneof("subject")
        campaign = request.options.campaign
        if which == "recipient":
            violations = Violations()
            item = recipient_from_proto(
                request.recipient,
                workspace,
                "recipient",
                violations,
                campaign=campaign,
                defaults=("preview", "preview"),
            )
            violations.raise_if_any()
            assert item is not None
            return item
        if which != "profile":
            raise InvalidArgument.field("profile", "give a profile or a recipient")
        profile = parse(request.profile, "profile", "profiles")
        if profile.workspace != workspace:
            raise InvalidArgument.field("profile", "must be a profile of the parent workspace")
        principal = current_principal.get()
        if principal is not None and not principal.allows_scope("profiles:read"):
            raise PermissionDenied("previewing a profile needs the 'profiles:read' scope too")
        person = await self.profiles.person(request.profile)
        recipient = Recipient(
            person.profile_id,
            person.email,
            person.traits,
            locale=person.locale,
            timezone=person.timezone,
        )
        delivery = Delivery(workspace, "preview", campaign={"name": campaign} if campaign else {})
        return recipient, delivery

    async def RenderBatch(  # type: ignore[override]  # the answer, already in wire format
        self, request: pb.RenderBatchRequest, context: Context
    ) -> EncodedResponse:
        workspace, template_id, number = _template_or_version(request.version, "version")
        count = len(request.recipients)
        if not count or count > self.settings.max_recipients:
            raise InvalidArgument.field(
                "recipients", f"give 1 to {self.settings.max_recipients} recipients, got {count}"
            )
        options = send_options(request.options)
        if number is None:
            template = await self.catalog.template(workspace, template_id)
            if not template.published_version:
                raise FailedPrecondition(f"template {template_id!r} has no published version")
            number = template.published_version
        published = await self.batch.published(workspace, template_id, number)
        timeout = self.settings.batch_timeout.total_seconds()
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = min(timeout, remaining)

        def render() -> EncodedResponse:
            # Decoding recipients, rendering and encoding results are all CPU work: a
            # worker thread does them, so the event loop keeps serving other calls.
            items = batch_items(request, workspace, options)
            # Each result is encoded as it is rendered; the batch renderer keeps the
            # response under the message limit as it goes. The answer goes out in the
            # wire format it is written in (see `wire_render.EncodedResponse`).
            writer = ResponseWriter()
            self.batch.render_batch(published, options, items, timeout=timeout, write=writer.add)
            return writer.encoded()

        return await asyncio.to_thread(render)

    # Merge-field maps ---------------------------------------------------------------

    async def GetMergeFieldMap(
        self, request: pb.GetMergeFieldMapRequest, context: Context
    ) -> pb.GetMergeFieldMapResponse:
        workspace = _merge_map_workspace(request.name, "name")
        fields = await self.catalog.merge_fields(workspace)
        return pb.GetMergeFieldMapResponse(map=wire.merge_field_map_to_proto(workspace, fields))

    async def UpdateMergeFieldMap(
        self, request: pb.UpdateMergeFieldMapRequest, context: Context
    ) -> pb.UpdateMergeFieldMapResponse:
        workspace = _merge_map_workspace(request.map.name, "map.name")
        fields = wire.merge_fields_from_proto(request.map.fields, "map.fields")

        async def update() -> pb.UpdateMergeFieldMapResponse:
            saved = await self.catalog.set_merge_fields(workspace, fields)
            return pb.UpdateMergeFieldMapResponse(
                map=wire.merge_field_map_to_proto(workspace, saved)
            )

        return await self.requests.run(
            workspace, "UpdateMergeFieldMap", request, pb.UpdateMergeFieldMapResponse, update
        )
