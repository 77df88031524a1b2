"""The compiled template: what publishing produces and what renders fast.

A `CompiledTemplate` is immutable and self-contained: final Jinja sources for every
part (MJML already compiled, CSS already inlined, links already wired for tracking,
text part already laid out), plus the tables those sources index into. It serialises
to JSON so the service can store it beside the version and any replica can load it
without repeating the publish work. `digest` identifies its content; the render cache
is keyed by it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mailwright_render.errors import Issue, Severity
from mailwright_render.htmlpass import Link
from mailwright_render.mergetags import MergeCondition, MergeTag
from mailwright_render.model import Condition, RuleCondition, SegmentCondition, TemplateKind
from mailwright_render.sandbox import MissingPolicy

FORMAT_VERSION = 1


@dataclass(frozen=True)
class CompiledVariant:
    key: str
    weight: float
    source: str


@dataclass(frozen=True)
class CompiledBlock:
    """A content block: conditions of its variants in order (first match wins)."""

    name: str
    keys: tuple[str, ...]
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class CompiledTemplate:
    name: str
    kind: TemplateKind
    missing: MissingPolicy
    subject: tuple[CompiledVariant, ...]
    preheader: tuple[CompiledVariant, ...]
    html: str
    text: str
    links: tuple[Link, ...]
    tags: tuple[MergeTag, ...]
    conditions: tuple[MergeCondition, ...]
    blocks: tuple[CompiledBlock, ...]
    warnings: tuple[Issue, ...] = ()
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.digest:
            payload = json.dumps(_content(self), sort_keys=True, separators=(",", ":"))
            object.__setattr__(self, "digest", hashlib.sha256(payload.encode()).hexdigest())

    def subject_variant(self, key: str | None) -> CompiledVariant:
        return _variant(self.subject, key, "subject")

    @functools.cached_property
    def tracked_links(self) -> tuple[bool, ...]:
        """Whether each link, by index, is tracked (read for every link of every message)."""
        return tuple(link.tracked for link in self.links)

    def preheader_variant(self, key: str | None) -> CompiledVariant | None:
        if not self.preheader:
            return None
        return _variant(self.preheader, key, "preheader")

    def to_json(self) -> str:
        document = _content(self)
        document["warnings"] = [_issue_dict(issue) for issue in self.warnings]
        document["digest"] = self.digest
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CompiledTemplate:
        data = json.loads(text)
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"compiled template format {data.get('format')!r} is not supported")
        compiled = cls(
            name=data["name"],
            kind=TemplateKind(data["kind"]),
            missing=MissingPolicy(data["missing"]),
            subject=tuple(CompiledVariant(**v) for v in data["subject"]),
            preheader=tuple(CompiledVariant(**v) for v in data["preheader"]),
            html=data["html"],
            text=data["text"],
            links=tuple(Link(**link) for link in data["links"]),
            tags=tuple(MergeTag(**tag) for tag in data["tags"]),
            conditions=tuple(MergeCondition(**c) for c in data["conditions"]),
            blocks=tuple(_block(b) for b in data["blocks"]),
            warnings=tuple(_issue(i) for i in data.get("warnings", [])),
        )
        if data.get("digest") not in (None, compiled.digest):
            raise ValueError("compiled template does not match its digest")
        return compiled


class UnknownVariant(KeyError):
    """A subject or preheader variant key that the template does not have."""


def _variant(variants: tuple[CompiledVariant, ...], key: str | None, part: str) -> CompiledVariant:
    if key is None:
        return variants[0]
    for variant in variants:
        if variant.key == key:
            return variant
    raise UnknownVariant(f"{part} variant {key!r} does not exist")


def _content(compiled: CompiledTemplate) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "name": compiled.name,
        "kind": compiled.kind.value,
        "missing": compiled.missing.value,
        "subject": [asdict(v) for v in compiled.subject],
        "preheader": [asdict(v) for v in compiled.preheader],
        "html": compiled.html,
        "text": compiled.text,
        "links": [asdict(link) for link in compiled.links],
        "tags": [asdict(tag) for tag in compiled.tags],
        "conditions": [asdict(c) for c in compiled.conditions],
        "blocks": [
            {
                "name": block.name,
                "keys": list(block.keys),
                "conditions": [_condition_dict(c) for c in block.conditions],
            }
            for block in compiled.blocks
        ],
    }


def _condition_dict(condition: Condition) -> dict[str, Any]:
    if isinstance(condition, SegmentCondition):
        return {"segments": list(condition.segments), "match": condition.match}
    return {"rule": condition.rule}


def _block(data: dict[str, Any]) -> CompiledBlock:
    conditions: list[Condition] = []
    for item in data["conditions"]:
        if "rule" in item:
            conditions.append(RuleCondition(item["rule"]))
        else:
            conditions.append(SegmentCondition(tuple(item["segments"]), item["match"]))
    return CompiledBlock(data["name"], tuple(data["keys"]), tuple(conditions))


def _issue_dict(issue: Issue) -> dict[str, Any]:
    document = asdict(issue)
    document["severity"] = issue.severity.value
    return document


def _issue(data: dict[str, Any]) -> Issue:
    return Issue(**{**data, "severity": Severity(data["severity"])})
