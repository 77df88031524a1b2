"""Protobuf messages of `mailwright.render.v1` to domain objects and back: templates.

The servicer (`api.py`) and the `mailwright templates` commands translate through this
module and `wire_render` (recipients, options, results) and nowhere else. Conversions
from requests check what they read and collect every problem as a field violation named
by its path in the request (`content.blocks[1].variants[0].condition`), raised
together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.errors import FieldViolation, InvalidArgument, Violations
from mailwright.names import resource_name
from mailwright.render.v1 import render_pb2
from mailwright_render.blockrules import condition_text
from mailwright_render.errors import Issue, Severity, TemplateInvalid
from mailwright_render.mergetags import MergeField
from mailwright_render.model import (
    BlockVariant,
    Condition,
    ContentBlock,
    RuleCondition,
    SegmentCondition,
    TemplateKind,
    TemplateSource,
    Variant,
)
from mailwright_render.records import Authored, TemplateMeta, TemplateRecord, VersionRecord
from mailwright_render.sandbox import MissingPolicy
from mailwright_render.wire_render import segment_id

MAX_DISPLAY_NAME = 200
MAX_DESCRIPTION = 10_000
MAX_BLOCKS = 100
MAX_POSTAL_ADDRESS = 1000
MAX_MERGE_FIELDS = 500
_TAG = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_PART = re.compile(r"^(subject|preheader)\[(.+)\]$")
_BLOCK_PART = re.compile(r"^block ([^/]+)(?:/(.+))?$")


def _timestamp(value: Any) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


# Template content -----------------------------------------------------------------------

_CATEGORY: dict[render_pb2.TemplateCategory.ValueType, TemplateKind] = {
    render_pb2.TEMPLATE_CATEGORY_TRANSACTIONAL: TemplateKind.TRANSACTIONAL,
    render_pb2.TEMPLATE_CATEGORY_MARKETING: TemplateKind.MARKETING,
}
_CATEGORY_OUT: dict[TemplateKind, render_pb2.TemplateCategory.ValueType] = {
    kind: category for category, kind in _CATEGORY.items()
}


def kind_from_proto(
    category: render_pb2.TemplateCategory.ValueType,
    fallback: render_pb2.TemplateCategory.ValueType = render_pb2.TEMPLATE_CATEGORY_UNSPECIFIED,
) -> TemplateKind:
    """The kind of a category; unspecified falls back, then to marketing (the strict one)."""
    return _CATEGORY.get(category) or _CATEGORY.get(fallback) or TemplateKind.MARKETING


def _variants(
    items: Any, field: str, violations: Violations, *, required: bool
) -> tuple[Variant, ...]:
    variants: list[Variant] = []
    if required and not items:
        violations.add(field, "at least one is required")
    for index, item in enumerate(items):
        if item.weight < 0:
            violations.add(f"{field}[{index}].weight", "must be zero or more")
        # An unset weight (0) counts as 1: variants are equally likely unless weighted.
        weight = item.weight if item.weight > 0 else 1.0
        variants.append(Variant(item.key or chr(ord("a") + index % 26), item.template, weight))
    return tuple(variants)


def _condition(item: Any, field: str, violations: Violations) -> Condition:
    which = item.WhichOneof("condition")
    if which == "segment" and item.segment.strip():
        return SegmentCondition((segment_id(item.segment.strip()),))
    if which == "rule_text" and item.rule_text.strip():
        return RuleCondition(item.rule_text)
    violations.add(f"{field}.condition", "give a segment or a rule_text")
    return RuleCondition("")


def content_from_proto(
    content: render_pb2.TemplateContent,
    template_id: str,
    *,
    field: str = "content",
    category: render_pb2.TemplateCategory.ValueType = render_pb2.TEMPLATE_CATEGORY_UNSPECIFIED,
) -> Authored:
    """The authored content of a request; InvalidArgument lists every problem."""
    violations = Violations()
    subjects = _variants(content.subjects, f"{field}.subjects", violations, required=True)
    preheaders = _variants(content.preheaders, f"{field}.preheaders", violations, required=False)
    if len(content.blocks) > MAX_BLOCKS:
        violations.add(f"{field}.blocks", f"at most {MAX_BLOCKS} blocks")
    blocks: list[ContentBlock] = []
    for index, block in enumerate(content.blocks[:MAX_BLOCKS]):
        where = f"{field}.blocks[{index}]"
        variants = tuple(
            BlockVariant(
                variant.key or f"v{position + 1}",
                variant.content,
                _condition(variant, f"{where}.variants[{position}]", violations),
            )
            for position, variant in enumerate(block.variants)
        )
        blocks.append(ContentBlock(block.name, variants, block.default_content))
    if len(content.postal_address) > MAX_POSTAL_ADDRESS:
        violations.add(f"{field}.postal_address", f"longer than {MAX_POSTAL_ADDRESS} characters")
    if not content.body.strip():
        violations.add(f"{field}.body", "is required")
    violations.raise_if_any()
    mjml = content.format == render_pb2.SOURCE_FORMAT_MJML or (
        content.format == render_pb2.SOURCE_FORMAT_UNSPECIFIED
        and content.body.lstrip().lower().startswith("<mjml")
    )
    try:
        source = TemplateSource(
            name=template_id,
            subject=subjects,
            preheader=preheaders,
            html=None if mjml else content.body,
            mjml=content.body if mjml else None,
            text=content.text or None,
            blocks=tuple(blocks),
            kind=kind_from_proto(content.category, category),
            missing=(
                MissingPolicy.ERROR
                if content.missing == render_pb2.MISSING_VALUE_ERROR
                else MissingPolicy.EMPTY
            ),
        )
    except TemplateInvalid as invalid:
        raise invalid_content(invalid.issues, None, field) from None
    return Authored(source, content.postal_address)


def _condition_to_proto(condition: Condition, variant: render_pb2.BlockVariant) -> None:
    if isinstance(condition, RuleCondition):
        variant.rule_text = condition.rule
    elif len(condition.segments) == 1 and condition.match == "any":
        variant.segment = condition.segments[0]
    else:
        variant.rule_text = condition_text(condition)


def content_to_proto(authored: Authored) -> render_pb2.TemplateContent:
    source = authored.source
    content = render_pb2.TemplateContent(
        subjects=[render_pb2.TextVariant(key=v.key, template=v.source, weight=v.weight)
                  for v in source.subject],
        preheaders=[render_pb2.TextVariant(key=v.key, template=v.source, weight=v.weight)
                    for v in source.preheader],
        format=render_pb2.SOURCE_FORMAT_MJML if source.mjml is not None
        else render_pb2.SOURCE_FORMAT_HTML,
        body=source.mjml if source.mjml is not None else source.html or "",
        text=source.text or "",
        category=_CATEGORY_OUT[source.kind],
        postal_address=authored.postal_address,
        missing=render_pb2.MISSING_VALUE_ERROR if source.missing is MissingPolicy.ERROR
        else render_pb2.MISSING_VALUE_EMPTY,
    )  # fmt: skip
    for block in source.blocks:
        message = content.blocks.add(name=block.name, default_content=block.default)
        for item in block.variants:
            variant = message.variants.add(key=item.key, content=item.content)
            _condition_to_proto(item.when, variant)
    return content


def meta_from_proto(display_name: str, description: str, field: str = "template") -> TemplateMeta:
    violations = Violations()
    prefix = f"{field}." if field else ""
    if len(display_name) > MAX_DISPLAY_NAME:
        violations.add(f"{prefix}display_name", f"longer than {MAX_DISPLAY_NAME} characters")
    if len(description) > MAX_DESCRIPTION:
        violations.add(f"{prefix}description", f"longer than {MAX_DESCRIPTION} characters")
    violations.raise_if_any()
    return TemplateMeta(display_name.strip(), description)


# Issues ---------------------------------------------------------------------------------


def issue_part(part: str) -> str:
    """The contract's name of a part: `body`, `text`, `subject[a]`, `block:hero/vip`."""
    if part in ("html", "mjml"):
        return "body"
    block = _BLOCK_PART.match(part)
    if block:
        return f"block:{block.group(1)}" + (f"/{block.group(2)}" if block.group(2) else "")
    return part


def issue_field(part: str, source: TemplateSource | None, field: str = "content") -> str:
    """The request field an issue is about, e.g. `content.subjects[1].template`."""
    if part in ("html", "mjml", "body"):
        return f"{field}.body"
    if part in ("text", "postal_address"):
        return f"{field}.{part}"
    if part in ("subject", "preheader"):
        return f"{field}.{part}s"
    variant = _PART.match(part)
    if variant:
        kind, key = variant.groups()
        options = (source.subject if kind == "subject" else source.preheader) if source else ()
        index = next((i for i, v in enumerate(options) if v.key == key), None)
        return f"{field}.{kind}s" + (f"[{index}].template" if index is not None else "")
    block = _BLOCK_PART.match(part)
    if block and source is not None:
        name, key = block.groups()
        index = next((i for i, b in enumerate(source.blocks) if b.name == name), None)
        if index is None:
            return f"{field}.blocks"
        where = f"{field}.blocks[{index}]"
        if key == "default":
            return f"{where}.default_content"
        keys = [v.key for v in source.blocks[index].variants]
        return f"{where}.variants[{keys.index(key)}].content" if key in keys else where
    if part.startswith("block"):
        return f"{field}.blocks"
    return field


def _describe(issue: Issue) -> str:
    where = ""
    if issue.line is not None:
        where = f"line {issue.line}" + (f", column {issue.column}" if issue.column else "") + ": "
    return f"{where}{issue.message} [{issue.code}]"


def invalid_content(
    issues: tuple[Issue, ...], source: TemplateSource | None, field: str = "content"
) -> InvalidArgument:
    """Every error of a template as field violations naming the part and the position."""
    errors = [issue for issue in issues if issue.is_error]
    violations = [
        FieldViolation(issue_field(issue.part, source, field), _describe(issue)) for issue in errors
    ]
    first = f"{issue_part(errors[0].part)}: {_describe(errors[0])}" if errors else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidArgument(f"the template is invalid: {first}{more}", violations)


_CODES = {"gmail-clipping": "clipping"}


def issue_to_proto(issue: Issue) -> render_pb2.TemplateIssue:
    return render_pb2.TemplateIssue(
        severity=render_pb2.ISSUE_SEVERITY_ERROR
        if issue.severity is Severity.ERROR
        else render_pb2.ISSUE_SEVERITY_WARNING,
        code=_CODES.get(issue.code, issue.code.replace("-", "_")),
        message=issue.message,
        part=issue_part(issue.part),
        line=issue.line or 0,
        column=issue.column or 0,
    )


# Resources ------------------------------------------------------------------------------


def template_name(workspace: str, template_id: str) -> str:
    return resource_name(workspace, "templates", template_id)


def version_name(workspace: str, template_id: str, version: int) -> str:
    return resource_name(workspace, "templates", template_id, "versions", str(version))


def template_to_proto(record: TemplateRecord) -> render_pb2.Template:
    return render_pb2.Template(
        name=template_name(record.workspace, record.template_id),
        display_name=record.display_name,
        description=record.description,
        category=_CATEGORY_OUT[record.kind],
        latest_version=record.latest_version,
        published_version=record.published_version,
        create_time=_timestamp(record.created_at),
        update_time=_timestamp(record.updated_at),
    )


def version_to_proto(record: VersionRecord) -> render_pb2.TemplateVersion:
    version = render_pb2.TemplateVersion(
        name=version_name(record.workspace, record.template_id, record.version),
        version=record.version,
        state=render_pb2.VERSION_STATE_PUBLISHED
        if record.state.value == "published"
        else render_pb2.VERSION_STATE_DRAFT,
        create_time=_timestamp(record.created_at),
        warnings=[issue_to_proto(issue) for issue in record.warnings],
        html_size=record.html_size,
    )
    if record.authored is not None:
        version.content.CopyFrom(content_to_proto(record.authored))
    if record.published_at is not None:
        version.publish_time.CopyFrom(_timestamp(record.published_at))
    return version


# Merge fields ---------------------------------------------------------------------------


def merge_fields_from_proto(fields: Mapping[str, str], field: str) -> dict[str, MergeField]:
    violations = Violations()
    if len(fields) > MAX_MERGE_FIELDS:
        violations.add(field, f"at most {MAX_MERGE_FIELDS} merge fields")
    result: dict[str, MergeField] = {}
    for tag, trait in sorted(fields.items()):
        name = tag.strip().upper()
        if not _TAG.match(name):
            violations.add(f"{field}[{tag}]", "merge tags are A-Z, 0-9 and _, starting a letter")
        if not trait.strip() or len(trait) > 128 or any(c.isspace() for c in trait):
            violations.add(f"{field}[{tag}]", "the trait key must be 1-128 non-space characters")
        if name in result:
            violations.add(f"{field}[{tag}]", f"{name} is given twice")
        result[name] = MergeField(trait.strip())
    violations.raise_if_any()
    return result


def merge_field_map_name(workspace: str) -> str:
    return f"workspaces/{workspace}/mergeFieldMap"


def merge_field_map_to_proto(
    workspace: str, fields: Mapping[str, MergeField]
) -> render_pb2.MergeFieldMap:
    return render_pb2.MergeFieldMap(
        name=merge_field_map_name(workspace),
        fields={tag: field.trait for tag, field in fields.items()},
    )
