"""What the render service keeps: templates, their versions, and publish results.

Plain frozen dataclasses shared by the store, the catalogue and the API. A template is a
name with metadata and two pointers (its latest version, the version sends use); each
version is immutable content as authored, and once published also the compiled artefact
(`CompiledTemplate.to_json`), its digest and the warnings found at publish.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from mailwright_render.errors import Issue, Severity
from mailwright_render.model import TemplateKind, TemplateSource


class VersionState(Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


@dataclass(frozen=True)
class Authored:
    """A version's content as its author wrote it, with the sender's postal address."""

    source: TemplateSource
    postal_address: str = ""


@dataclass(frozen=True)
class TemplateMeta:
    display_name: str = ""
    description: str = ""


@dataclass(frozen=True)
class TemplateRecord:
    workspace: str
    template_id: str
    display_name: str
    description: str
    kind: TemplateKind
    latest_version: int
    published_version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class VersionRecord:
    """One version. `authored` is None when versions are listed (content is fetched alone)."""

    workspace: str
    template_id: str
    version: int
    state: VersionState
    authored: Authored | None
    created_at: datetime
    published_at: datetime | None = None
    warnings: tuple[Issue, ...] = ()
    html_size: int = 0
    digest: str | None = None


@dataclass(frozen=True)
class Publication:
    """What publishing a draft stores beside it."""

    artefact: str
    digest: str
    warnings: tuple[Issue, ...]
    html_size: int


@dataclass(frozen=True)
class StoredArtefact:
    """A published version as the delivery path loads it."""

    artefact: str
    digest: str
    postal_address: str


def issues_to_json(issues: tuple[Issue, ...]) -> str:
    return json.dumps(
        [
            {
                "severity": issue.severity.value,
                "code": issue.code,
                "message": issue.message,
                "part": issue.part,
                "line": issue.line,
                "column": issue.column,
            }
            for issue in issues
        ]
    )


def issues_from_json(text: str | None) -> tuple[Issue, ...]:
    if not text:
        return ()
    return tuple(
        Issue(
            Severity(item["severity"]),
            item["code"],
            item["message"],
            item["part"],
            item.get("line"),
            item.get("column"),
        )
        for item in json.loads(text)
    )
