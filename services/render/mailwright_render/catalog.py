"""The template catalogue: versions saved, validated and published for a workspace.

What the API's template RPCs do, without protobuf: each update is a new immutable
draft; publishing compiles a draft once (merge tags translated, MJML compiled, CSS
inlined, links wired, text part laid out) with the workspace's merge-field map and
profile schema, stores the artefact and points the template at it. Publishing a
version that is already published only moves the pointer: that is a rollback, and the
artefact sends use is byte for byte the one validated back then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from mailwright.errors import NotFound
from mailwright.runtime.db import Database
from mailwright_render.artefact import CompiledTemplate
from mailwright_render.blockrules import check_block_rule
from mailwright_render.compile import CompileOptions, compile_template
from mailwright_render.config import RenderSettings
from mailwright_render.errors import Issue, Severity, TemplateInvalid
from mailwright_render.mergetags import DEFAULT_MERGE_FIELDS, MergeField
from mailwright_render.model import TemplateKind
from mailwright_render.profiles import ProfileDirectory
from mailwright_render.records import (
    Authored,
    Publication,
    TemplateMeta,
    TemplateRecord,
    VersionRecord,
    VersionState,
)
from mailwright_render.store import TemplateStore


def _now() -> datetime:
    return datetime.now(UTC)


def _sender_issues(authored: Authored) -> tuple[Issue, ...]:
    """Marketing mail shows the sender's address: the version must say what it is."""
    if authored.source.kind is not TemplateKind.MARKETING or authored.postal_address.strip():
        return ()
    return (
        Issue(
            Severity.ERROR,
            "missing-postal-address",
            "marketing templates need the sender's postal address (postal_address), which"
            " {{ sender.address }} and *|LIST:ADDRESS|* show",
            "postal_address",
        ),
    )


class Catalog:
    """Templates and versions of every workspace, through the store."""

    def __init__(
        self,
        db: Database,
        store: TemplateStore,
        profiles: ProfileDirectory,
        settings: RenderSettings,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.db = db
        self.store = store
        self.profiles = profiles
        self.settings = settings
        self.clock = clock

    # Saving -------------------------------------------------------------------------

    async def create(
        self, workspace: str, template_id: str, meta: TemplateMeta, authored: Authored
    ) -> tuple[TemplateRecord, VersionRecord]:
        return await self.db.run(
            self.store.create, workspace, template_id, meta, authored, self.clock()
        )

    async def update(
        self,
        workspace: str,
        template_id: str,
        authored: Authored | None,
        meta: TemplateMeta,
    ) -> tuple[TemplateRecord, VersionRecord]:
        return await self.db.run(
            self.store.add_version, workspace, template_id, authored, meta, self.clock()
        )

    # Reading ------------------------------------------------------------------------

    async def template(self, workspace: str, template_id: str) -> TemplateRecord:
        found = await self.db.run(self.store.template, workspace, template_id)
        if found is None:
            raise NotFound(f"template {template_id!r} not found")
        return found

    async def templates(
        self, workspace: str, after: str | None, limit: int
    ) -> list[TemplateRecord]:
        return await self.db.run(self.store.templates, workspace, after, limit)

    async def version(self, workspace: str, template_id: str, version: int) -> VersionRecord:
        found = await self.db.run(self.store.version, workspace, template_id, version)
        if found is None:
            await self.template(workspace, template_id)
            raise NotFound(f"version {version} of template {template_id!r} not found")
        return found

    async def versions(
        self, workspace: str, template_id: str, before: int | None, limit: int
    ) -> list[VersionRecord]:
        await self.template(workspace, template_id)
        return await self.db.run(self.store.versions, workspace, template_id, before, limit)

    async def current(self, workspace: str, template_id: str) -> VersionRecord:
        """The published version of a template, else its latest draft."""
        template = await self.template(workspace, template_id)
        return await self.version(
            workspace, template_id, template.published_version or template.latest_version
        )

    # Compiling and publishing -------------------------------------------------------

    async def options(
        self, workspace: str, postal_address: str
    ) -> tuple[CompileOptions, tuple[Issue, ...]]:
        """Compile options of the workspace, and notes about how they were found."""
        fields, schema = await asyncio.gather(
            self.merge_fields(workspace), self.profiles.schema(workspace)
        )
        options = CompileOptions(
            merge_fields=fields,
            known_traits=schema.traits,
            unknown_trait=schema.severity(self.settings.unknown_variable_severity),
            postal_address=postal_address or None,
            rule_check=check_block_rule,
        )
        return options, schema.notes()

    async def compile(
        self, workspace: str, authored: Authored
    ) -> tuple[CompiledTemplate, tuple[Issue, ...]]:
        """Compile for publishing; `TemplateInvalid` lists every error and warning."""
        options, notes = await self.options(workspace, authored.postal_address)
        notes += _sender_issues(authored)
        try:
            compiled = await asyncio.to_thread(compile_template, authored.source, options)
        except TemplateInvalid as invalid:
            raise TemplateInvalid(invalid.issues + notes) from None
        if any(issue.is_error for issue in notes):
            raise TemplateInvalid(compiled.warnings + notes)
        return compiled, compiled.warnings + notes

    async def validate(self, workspace: str, authored: Authored) -> tuple[Issue, ...]:
        """Every error and warning publishing would report."""
        try:
            _, issues = await self.compile(workspace, authored)
        except TemplateInvalid as invalid:
            return invalid.issues
        return issues

    async def publish(
        self, workspace: str, template_id: str, version: int
    ) -> tuple[TemplateRecord, VersionRecord]:
        stored = await self.version(workspace, template_id, version)
        publication = None
        if stored.state is VersionState.DRAFT:
            assert stored.authored is not None
            compiled, warnings = await self.compile(workspace, stored.authored)
            publication = Publication(
                artefact=compiled.to_json(),
                digest=compiled.digest,
                warnings=warnings,
                html_size=len(compiled.html.encode()),
            )
        return await self.db.run(
            self.store.publish, workspace, template_id, version, publication, self.clock()
        )

    # Merge fields -------------------------------------------------------------------

    async def merge_fields(self, workspace: str) -> Mapping[str, MergeField]:
        """The workspace's merge-field map, or the default one."""
        stored = await self.db.run(self.store.merge_fields, workspace)
        return DEFAULT_MERGE_FIELDS if stored is None else stored

    async def set_merge_fields(
        self, workspace: str, fields: Mapping[str, MergeField]
    ) -> Mapping[str, MergeField]:
        await self.db.run(self.store.set_merge_fields, workspace, dict(fields), self.clock())
        return fields
