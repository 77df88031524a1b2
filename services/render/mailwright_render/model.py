"""What a template is made of, as its author wrote it.

A `TemplateSource` is one version of a template: subject and preheader variants, a body
in HTML or MJML, an optional authored text part, and the dynamic content blocks the body
places with `{% content_block "name" %}`. It is plain data; `compile.py` turns it into
the `CompiledTemplate` that renders. Structural mistakes (no subject, duplicate keys,
oversized parts) are reported as `TemplateInvalid` naming the field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Protocol

from mailwright_render.errors import Issue, Severity, TemplateInvalid
from mailwright_render.sandbox import MissingPolicy

MAX_PART_CHARS = 1_000_000
MAX_VARIANTS = 26
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_BLOCK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class TemplateKind(Enum):
    """Marketing mail must carry an unsubscribe link and a postal address; transactional not."""

    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


@dataclass(frozen=True)
class Variant:
    """One alternative of a subject or preheader: a key, a template, a weight for experiments."""

    key: str
    source: str
    weight: float = 1.0


@dataclass(frozen=True)
class SegmentCondition:
    """True when the recipient is in any / all / none of the segments."""

    segments: tuple[str, ...]
    match: Literal["any", "all", "none"] = "any"

    def holds(self, member_of: frozenset[str]) -> bool:
        if self.match == "all":
            return all(segment in member_of for segment in self.segments)
        found = any(segment in member_of for segment in self.segments)
        return found if self.match == "any" else not found


@dataclass(frozen=True)
class RuleCondition:
    """True when a rule in the segment rule language holds for the recipient."""

    rule: str


Condition = SegmentCondition | RuleCondition


class RuleEvaluator(Protocol):
    """Evaluates a rule of the segment rule language against one recipient.

    Injected by the service (it comes from `mailwright.rules`); called with the rule's
    text, the recipient's traits and the ids of the segments they belong to.
    """

    def __call__(
        self, rule: str, traits: Mapping[str, object], segments: frozenset[str]
    ) -> bool: ...


@dataclass(frozen=True)
class BlockVariant:
    key: str
    content: str
    when: Condition


@dataclass(frozen=True)
class ContentBlock:
    """A named block: the first variant whose condition holds is shown, else `default`."""

    name: str
    variants: tuple[BlockVariant, ...]
    default: str = ""


@dataclass(frozen=True)
class TemplateSource:
    """One version of a template, as authored. Exactly one of `html` and `mjml`."""

    name: str
    subject: tuple[Variant, ...]
    html: str | None = None
    mjml: str | None = None
    text: str | None = None
    preheader: tuple[Variant, ...] = ()
    blocks: tuple[ContentBlock, ...] = ()
    kind: TemplateKind = TemplateKind.MARKETING
    missing: MissingPolicy = MissingPolicy.EMPTY

    def __post_init__(self) -> None:
        problems = list(_structure(self))
        if problems:
            raise TemplateInvalid(tuple(problems))

    def block(self, name: str) -> ContentBlock | None:
        return next((block for block in self.blocks if block.name == name), None)


def _structure(source: TemplateSource) -> list[Issue]:
    problems: list[Issue] = []

    def problem(part: str, message: str) -> None:
        problems.append(Issue(Severity.ERROR, "invalid-field", message, part))

    if not source.name.strip():
        problem("name", "a template needs a name")
    if (source.html is None) == (source.mjml is None):
        problem("html", "give exactly one of html and mjml")
    if not source.subject:
        problem("subject", "at least one subject variant is required")
    for part, variants in (("subject", source.subject), ("preheader", source.preheader)):
        if len(variants) > MAX_VARIANTS:
            problem(part, f"at most {MAX_VARIANTS} variants are allowed")
        keys = [variant.key for variant in variants]
        if len(set(keys)) != len(keys):
            problem(part, f"variant keys must be unique, got {keys}")
        for option in variants:
            if not _KEY.match(option.key):
                problem(f"{part}[{option.key}]", "variant keys are letters, digits, _ . -")
            if not option.weight >= 0:
                problem(f"{part}[{option.key}]", "weight must be zero or more")
            if len(option.source) > 2000:
                problem(f"{part}[{option.key}]", "longer than 2000 characters")
    for part in ("html", "mjml", "text"):
        value = getattr(source, part)
        if value is not None and len(value) > MAX_PART_CHARS:
            problem(part, f"longer than {MAX_PART_CHARS} characters")
    names = [block.name for block in source.blocks]
    if len(set(names)) != len(names):
        problem("blocks", f"block names must be unique, got {names}")
    for block in source.blocks:
        if not _BLOCK_NAME.match(block.name):
            problem(f"block {block.name}", "block names are letters, digits, _ and -")
        keys = [variant.key for variant in block.variants]
        if len(set(keys)) != len(keys):
            problem(f"block {block.name}", f"variant keys must be unique, got {keys}")
        for variant in block.variants:
            if isinstance(variant.when, SegmentCondition) and not variant.when.segments:
                problem(f"block {block.name}/{variant.key}", "a segment condition needs ids")
    return problems


def pick_variant(variants: tuple[Variant, ...], bucket: str) -> Variant:
    """A deterministic weighted choice: the same `bucket` (say, a profile id) always gets
    the same variant, and buckets spread across variants in proportion to the weights."""
    if not variants:
        raise ValueError("no variants to pick from")
    total = sum(variant.weight for variant in variants)
    if total <= 0:
        return variants[0]
    digest = hashlib.sha256(bucket.encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * total
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return variant
    return variants[-1]
