"""The render service's tables and queries: templates, versions, merge-field maps.

Only this module knows SQLAlchemy. A version row is written once and never changes its
content: a draft becomes published exactly once (a conditional update from `draft`),
which adds the compiled artefact, its digest and the publish warnings; publishing an
already published version only moves the template's `published_version` pointer, which
is how a rollback works. Content is stored as authored, in the template-file shape
(`source_to_mapping`), as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mailwright.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound
from mailwright.runtime.db import Database
from mailwright.runtime.requests import request_log_table
from mailwright_render.fileformat import source_to_mapping, template_from_mapping
from mailwright_render.mergetags import MergeField
from mailwright_render.model import TemplateKind
from mailwright_render.records import (
    Authored,
    Publication,
    StoredArtefact,
    TemplateMeta,
    TemplateRecord,
    VersionRecord,
    VersionState,
    issues_from_json,
    issues_to_json,
)

metadata = sa.MetaData()

templates = sa.Table(
    "render_templates",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("template_id", sa.String(128), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("published_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

versions = sa.Table(
    "render_template_versions",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("template_id", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("postal_address", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("artefact", sa.Text, nullable=True),
    sa.Column("digest", sa.String(64), nullable=True),
    sa.Column("warnings", sa.Text, nullable=True),
    sa.Column("html_size", sa.Integer, nullable=False),
    sa.ForeignKeyConstraint(
        ["workspace", "template_id"],
        ["render_templates.workspace", "render_templates.template_id"],
        name="fk_render_template_versions_template",
    ),
)

merge_field_maps = sa.Table(
    "render_merge_field_maps",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("fields", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

request_log = request_log_table(metadata, "render")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Listed versions leave out what only GetTemplateVersion shows.
_VERSION_SUMMARY = [
    c for c in versions.c if c.name not in ("content", "artefact", "postal_address")
]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _template(row: sa.Row[Any]) -> TemplateRecord:
    return TemplateRecord(
        workspace=row.workspace,
        template_id=row.template_id,
        display_name=row.display_name,
        description=row.description,
        kind=TemplateKind(row.kind),
        latest_version=row.latest_version,
        published_version=row.published_version,
        created_at=_utc(row.created_at) or row.created_at,
        updated_at=_utc(row.updated_at) or row.updated_at,
    )


def _version(row: sa.Row[Any], with_content: bool) -> VersionRecord:
    authored = None
    if with_content:
        source = template_from_mapping(json.loads(row.content), Path("."))
        authored = Authored(source, row.postal_address)
    return VersionRecord(
        workspace=row.workspace,
        template_id=row.template_id,
        version=row.version,
        state=VersionState(row.state),
        authored=authored,
        created_at=_utc(row.created_at) or row.created_at,
        published_at=_utc(row.published_at),
        warnings=issues_from_json(row.warnings),
        html_size=row.html_size,
        digest=row.digest,
    )


class TemplateStore:
    """Queries of the render service; synchronous, run through `Database.run`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # Templates and versions ---------------------------------------------------------

    def create(
        self,
        workspace: str,
        template_id: str,
        meta: TemplateMeta,
        authored: Authored,
        now: datetime,
    ) -> tuple[TemplateRecord, VersionRecord]:
        """A new template with `authored` as its draft version 1; AlreadyExists if taken."""
        try:
            with self.db.engine.begin() as conn:
                conn.execute(
                    templates.insert().values(
                        workspace=workspace,
                        template_id=template_id,
                        display_name=meta.display_name,
                        description=meta.description,
                        kind=authored.source.kind.value,
                        latest_version=1,
                        published_version=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                self._insert_version(conn, workspace, template_id, 1, authored, now)
        except sa.exc.IntegrityError:
            raise AlreadyExists(f"template {template_id!r} already exists") from None
        return self._pair(workspace, template_id, 1)

    def add_version(
        self,
        workspace: str,
        template_id: str,
        authored: Authored | None,
        meta: TemplateMeta,
        now: datetime,
    ) -> tuple[TemplateRecord, VersionRecord]:
        """Save `authored` as the next draft version (and non-empty metadata fields).

        Without content only the metadata changes and the latest version is returned.
        """
        with self.db.engine.begin() as conn:
            row = conn.execute(
                sa.select(templates.c.latest_version)
                .where(*self._template_key(workspace, template_id))
                .with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"template {template_id!r} not found")
            version = row.latest_version
            changes: dict[str, Any] = {"updated_at": now}
            if meta.display_name:
                changes["display_name"] = meta.display_name
            if meta.description:
                changes["description"] = meta.description
            if authored is not None:
                version += 1
                self._insert_version(conn, workspace, template_id, version, authored, now)
                changes["latest_version"] = version
                changes["kind"] = authored.source.kind.value
            conn.execute(
                templates.update()
                .where(*self._template_key(workspace, template_id))
                .values(**changes)
            )
        return self._pair(workspace, template_id, version)

    def _insert_version(
        self,
        conn: sa.Connection,
        workspace: str,
        template_id: str,
        version: int,
        authored: Authored,
        now: datetime,
    ) -> None:
        conn.execute(
            versions.insert().values(
                workspace=workspace,
                template_id=template_id,
                version=version,
                state=VersionState.DRAFT.value,
                content=json.dumps(source_to_mapping(authored.source)),
                postal_address=authored.postal_address,
                created_at=now,
                html_size=0,
            )
        )

    def _pair(
        self, workspace: str, template_id: str, version: int
    ) -> tuple[TemplateRecord, VersionRecord]:
        template = self.template(workspace, template_id)
        stored = self.version(workspace, template_id, version)
        if template is None or stored is None:
            raise NotFound(f"template {template_id!r} vanished; retry")
        return template, stored

    @staticmethod
    def _template_key(workspace: str, template_id: str) -> tuple[sa.ColumnElement[bool], ...]:
        return (templates.c.workspace == workspace, templates.c.template_id == template_id)

    @staticmethod
    def _version_key(
        workspace: str, template_id: str, version: int
    ) -> tuple[sa.ColumnElement[bool], ...]:
        return (
            versions.c.workspace == workspace,
            versions.c.template_id == template_id,
            versions.c.version == version,
        )

    def template(self, workspace: str, template_id: str) -> TemplateRecord | None:
        with self.db.reader.connect() as conn:
            row = conn.execute(
                sa.select(templates).where(*self._template_key(workspace, template_id))
            ).first()
        return _template(row) if row is not None else None

    def templates(self, workspace: str, after: str | None, limit: int) -> list[TemplateRecord]:
        """Templates of a workspace by id, those after `after`, at most `limit`."""
        query = sa.select(templates).where(templates.c.workspace == workspace)
        if after is not None:
            query = query.where(templates.c.template_id > after)
        query = query.order_by(templates.c.template_id).limit(limit)
        with self.db.reader.connect() as conn:
            return [_template(row) for row in conn.execute(query)]

    def version(self, workspace: str, template_id: str, version: int) -> VersionRecord | None:
        with self.db.reader.connect() as conn:
            row = conn.execute(
                sa.select(versions).where(*self._version_key(workspace, template_id, version))
            ).first()
        return _version(row, with_content=True) if row is not None else None

    def versions(
        self, workspace: str, template_id: str, before: int | None, limit: int
    ) -> list[VersionRecord]:
        """Versions newest first, those below `before`, at most `limit`; without content."""
        query = sa.select(*_VERSION_SUMMARY).where(
            versions.c.workspace == workspace, versions.c.template_id == template_id
        )
        if before is not None:
            query = query.where(versions.c.version < before)
        query = query.order_by(versions.c.version.desc()).limit(limit)
        with self.db.reader.connect() as conn:
            return [_version(row, with_content=False) for row in conn.execute(query)]

    def artefact(self, workspace: str, template_id: str, version: int) -> StoredArtefact:
        """The compiled artefact of a published version; NotFound or FailedPrecondition."""
        with self.db.reader.connect() as conn:
            row = conn.execute(
                sa.select(
                    versions.c.state,
                    versions.c.artefact,
                    versions.c.digest,
                    versions.c.postal_address,
                ).where(*self._version_key(workspace, template_id, version))
            ).first()
        if row is None:
            raise NotFound(f"version {version} of template {template_id!r} not found")
        if row.state != VersionState.PUBLISHED.value or row.artefact is None:
            raise FailedPrecondition(
                f"version {version} of template {template_id!r} is a draft; publish it first"
            )
        return StoredArtefact(row.artefact, row.digest, row.postal_address)

    def publish(
        self,
        workspace: str,
        template_id: str,
        version: int,
        publication: Publication | None,
        now: datetime,
    ) -> tuple[TemplateRecord, VersionRecord]:
        """Make `version` the one sends use.

        A draft is published with `publication` (its content never changes again); an
        already published version, passed with None, only becomes current (a rollback).
        """
        with self.db.engine.begin() as conn:
            if publication is not None:
                done = conn.execute(
                    versions.update()
                    .where(
                        *self._version_key(workspace, template_id, version),
                        versions.c.state == VersionState.DRAFT.value,
                    )
                    .values(
                        state=VersionState.PUBLISHED.value,
                        published_at=now,
                        artefact=publication.artefact,
                        digest=publication.digest,
                        warnings=issues_to_json(publication.warnings),
                        html_size=publication.html_size,
                    )
                )
                if done.rowcount != 1:
                    # Someone published it meanwhile: theirs stands, ours only points.
                    self._require_published(conn, workspace, template_id, version)
            else:
                self._require_published(conn, workspace, template_id, version)
            conn.execute(
                templates.update()
                .where(*self._template_key(workspace, template_id))
                .values(published_version=version, updated_at=now)
            )
        return self._pair(workspace, template_id, version)

    def _require_published(
        self, conn: sa.Connection, workspace: str, template_id: str, version: int
    ) -> None:
        state = conn.execute(
            sa.select(versions.c.state).where(*self._version_key(workspace, template_id, version))
        ).scalar()
        if state is None:
            raise NotFound(f"version {version} of template {template_id!r} not found")
        if state != VersionState.PUBLISHED.value:
            raise FailedPrecondition(f"version {version} of template {template_id!r} is a draft")

    # Merge-field maps ---------------------------------------------------------------

    def merge_fields(self, workspace: str) -> dict[str, MergeField] | None:
        """The workspace's map, or None when it never set one (the defaults apply)."""
        with self.db.reader.connect() as conn:
            text = conn.execute(
                sa.select(merge_field_maps.c.fields).where(
                    merge_field_maps.c.workspace == workspace
                )
            ).scalar()
        if text is None:
            return None
        return {
            tag: MergeField(item["trait"], item.get("default", ""))
            for tag, item in json.loads(text).items()
        }

    def set_merge_fields(
        self, workspace: str, fields: Mapping[str, MergeField], now: datetime
    ) -> None:
        document = json.dumps(
            {tag: {"trait": f.trait, "default": f.default} for tag, f in fields.items()},
            sort_keys=True,
        )
        for _ in range(2):
            try:
                with self.db.engine.begin() as conn:
                    updated = conn.execute(
                        merge_field_maps.update()
                        .where(merge_field_maps.c.workspace == workspace)
                        .values(fields=document, updated_at=now)
                    )
                    if updated.rowcount == 0:
                        conn.execute(
                            merge_field_maps.insert().values(
                                workspace=workspace, fields=document, updated_at=now
                            )
                        )
                return
            except sa.exc.IntegrityError:
                continue  # a concurrent first write won the insert; update it instead
        raise Aborted("the merge-field map changed concurrently; retry")
