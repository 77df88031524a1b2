"""Template files on disk: a YAML document, a body with YAML front matter, or a bare body.

Three shapes are accepted (see docs/templates.md):

- `*.yaml` / `*.yml`: every field of a template (`name`, `kind`, `subject`, `preheader`,
  `html` or `mjml` inline or `html_file` / `mjml_file` beside it, `text`, `blocks`);
- a body (`.html`, `.mjml`) starting with `---` YAML front matter and a closing `---`;
- a bare `.html` / `.mjml` body: the subject is its `<title>`, the kind transactional.

`postal_address` (the sender's, which marketing mail must show) may sit beside the
template's fields; it belongs to the sender, so it is returned beside the source.

MJML is recognised by an `<mjml>` root. Mistakes raise `TemplateFileError` naming the
field.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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
from mailwright_render.sandbox import MissingPolicy

MAX_FILE_BYTES = 5_000_000
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n?", re.DOTALL)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_FIELDS = frozenset(
    {"name", "kind", "missing", "subject", "preheader", "html", "mjml", "html_file",
     "mjml_file", "text", "text_file", "blocks", "postal_address"}
)  # fmt: skip


class TemplateFileError(ValueError):
    """A template file that cannot be read as a template; the message names the field."""


@dataclass(frozen=True)
class TemplateFile:
    """What a template file holds: the template, and the sender's postal address if given."""

    source: TemplateSource
    postal_address: str = ""


def load_template_file(path: Path) -> TemplateSource:
    return read_template_file(path).source


def read_template_file(path: Path) -> TemplateFile:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise TemplateFileError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    content = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        fields = _yaml(content, path)
    else:
        front = _FRONT_MATTER.match(content)
        if front is not None:
            fields = _yaml(front.group(1), path)
            body = content[front.end() :]
            fields.setdefault(_body_kind(body), body)
        else:
            title = _TITLE.search(content)
            subject = html.unescape(" ".join(title.group(1).split())) if title else ""
            fields = {_body_kind(content): content, "subject": subject, "kind": "transactional"}
    source = template_from_mapping(fields, path.parent, default_name=path.stem)
    address = fields.get("postal_address", "")
    if not isinstance(address, str):
        raise TemplateFileError("postal_address: expected text")
    return TemplateFile(source, address)


def _yaml(text: str, path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TemplateFileError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise TemplateFileError(f"{path}: expected a mapping of template fields")
    return data


def _body_kind(body: str) -> str:
    return "mjml" if body.lstrip().lower().startswith("<mjml") else "html"


def template_from_mapping(
    fields: Mapping[str, Any], base: Path, *, default_name: str = "template"
) -> TemplateSource:
    """A `TemplateSource` from parsed fields; `*_file` paths are read relative to `base`."""
    unknown = set(fields) - _FIELDS
    if unknown:
        raise TemplateFileError(f"unknown template fields: {', '.join(sorted(unknown))}")
    values = dict(fields)
    for name in ("html", "mjml", "text"):
        file_name = values.pop(f"{name}_file", None)
        if file_name is not None:
            if name in values:
                raise TemplateFileError(f"give {name} or {name}_file, not both")
            values[name] = _read_beside(base, str(file_name), f"{name}_file")
    try:
        kind = TemplateKind(values.get("kind", "marketing"))
    except ValueError:
        raise TemplateFileError("kind: expected marketing or transactional") from None
    try:
        missing = MissingPolicy(values.get("missing", "empty"))
    except ValueError:
        raise TemplateFileError("missing: expected empty or error") from None
    return TemplateSource(
        name=str(values.get("name", default_name)),
        kind=kind,
        missing=missing,
        subject=_variants(values.get("subject", ""), "subject"),
        preheader=_variants(values.get("preheader"), "preheader"),
        html=_text(values.get("html"), "html"),
        mjml=_text(values.get("mjml"), "mjml"),
        text=_text(values.get("text"), "text"),
        blocks=_blocks(values.get("blocks") or {}),
    )


def source_to_mapping(source: TemplateSource) -> dict[str, Any]:
    """The fields of a template file for `source`: `template_from_mapping` reads it back.

    The service stores a version's authored content in this shape (as JSON).
    """
    fields: dict[str, Any] = {
        "name": source.name,
        "kind": source.kind.value,
        "missing": source.missing.value,
        "subject": [_variant_fields(variant) for variant in source.subject],
    }
    if source.preheader:
        fields["preheader"] = [_variant_fields(variant) for variant in source.preheader]
    for name in ("html", "mjml", "text"):
        value = getattr(source, name)
        if value is not None:
            fields[name] = value
    if source.blocks:
        fields["blocks"] = {
            block.name: {
                "default": block.default,
                "variants": [
                    {"key": v.key, "when": _condition_fields(v.when), "content": v.content}
                    for v in block.variants
                ],
            }
            for block in source.blocks
        }
    return fields


def _variant_fields(variant: Variant) -> dict[str, Any]:
    return {"key": variant.key, "template": variant.source, "weight": variant.weight}


def _condition_fields(condition: Condition) -> dict[str, Any]:
    if isinstance(condition, RuleCondition):
        return {"rule": condition.rule}
    if len(condition.segments) == 1 and condition.match == "any":
        return {"segment": condition.segments[0]}
    return {"segments": list(condition.segments), "match": condition.match}


def _read_beside(base: Path, name: str, field: str) -> str:
    path = (base / name).resolve()
    if not path.is_file():
        raise TemplateFileError(f"{field}: {name} is not a file")
    return path.read_text(encoding="utf-8")


def _text(value: object, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TemplateFileError(f"{field}: expected text")


def _variants(value: object, field: str) -> tuple[Variant, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (Variant("default", value),)
    if not isinstance(value, list):
        raise TemplateFileError(f"{field}: expected text or a list of variants")
    variants: list[Variant] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or "template" not in item:
            raise TemplateFileError(f"{field}[{index}]: expected {{key, template, weight}}")
        try:
            weight = float(item.get("weight", 1.0))
        except (TypeError, ValueError):
            raise TemplateFileError(f"{field}[{index}].weight: expected a number") from None
        key = str(item.get("key", chr(ord("a") + index)))
        variants.append(Variant(key, str(item["template"]), weight))
    return tuple(variants)


def _blocks(value: object) -> tuple[ContentBlock, ...]:
    if not isinstance(value, Mapping):
        raise TemplateFileError("blocks: expected a mapping of block name to block")
    blocks: list[ContentBlock] = []
    for name, block in value.items():
        if not isinstance(block, Mapping):
            raise TemplateFileError(f"blocks.{name}: expected {{default, variants}}")
        variants: list[BlockVariant] = []
        for index, item in enumerate(block.get("variants") or []):
            where = f"blocks.{name}.variants[{index}]"
            if not isinstance(item, Mapping) or "content" not in item or "when" not in item:
                raise TemplateFileError(f"{where}: expected {{key, when, content}}")
            key = str(item.get("key", f"v{index + 1}"))
            variants.append(
                BlockVariant(key, str(item["content"]), _condition(item["when"], where))
            )
        blocks.append(ContentBlock(str(name), tuple(variants), str(block.get("default", ""))))
    return tuple(blocks)


def _condition(value: object, where: str) -> Condition:
    if isinstance(value, Mapping):
        if "rule" in value:
            return RuleCondition(str(value["rule"]))
        if "segment" in value:
            return SegmentCondition((str(value["segment"]),))
        if "segments" in value and isinstance(value["segments"], list):
            match = str(value.get("match", "any"))
            if match not in ("any", "all", "none"):
                raise TemplateFileError(f"{where}.when.match: expected any, all or none")
            return SegmentCondition(
                tuple(str(segment) for segment in value["segments"]),
                match,  # type: ignore[arg-type]
            )
    raise TemplateFileError(f"{where}.when: expected {{segment}}, {{segments, match}} or {{rule}}")
