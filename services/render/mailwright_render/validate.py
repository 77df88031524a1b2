"""Publish-time validation of a compiled template's content.

Runs after compilation succeeded, on everything compilation learned:

- variables not in the profile schema (error or warning, by workspace policy);
- variables and merge tags used without a fallback where the trait may be absent;
- HTML beyond Gmail's clipping size (~102 KB);
- broken links: empty, `javascript:`, relative or malformed URLs;
- marketing mail without a visible unsubscribe link or the sender's postal address
  (an error: publishing fails), in the HTML and in an authored text part.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mailwright_render.checks import variable_uses
from mailwright_render.context import RESERVED_NAMES
from mailwright_render.errors import Issue, Severity
from mailwright_render.htmlpass import BodyFacts
from mailwright_render.mergetags import POSTAL_ADDRESS_KEYS, MergeTag
from mailwright_render.model import TemplateKind, TemplateSource
from mailwright_render.parts import Part
from mailwright_render.sandbox import MissingPolicy

if TYPE_CHECKING:
    from mailwright_render.compile import CompileOptions

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:")
_LOCAL_SCHEMES = ("mailto:", "tel:", "sms:", "#")
_STYLESHEET = re.compile(r"<link[^>]*rel\s*=\s*[\"']?stylesheet", re.IGNORECASE)
_SCRIPT = re.compile(r"<script\b", re.IGNORECASE)


@dataclass(frozen=True)
class Validation:
    source: TemplateSource
    options: CompileOptions
    parts: Sequence[Part]
    tags: Sequence[MergeTag]
    facts: BodyFacts
    html: str
    text: str
    text_authored: bool
    body: Part


def validate(v: Validation) -> list[Issue]:
    issues: list[Issue] = []
    issues.extend(_variables(v))
    issues.extend(_merge_tags(v))
    issues.extend(_size(v))
    issues.extend(_links(v))
    issues.extend(_compliance(v))
    return issues


def _variables(v: Validation) -> Iterator[Issue]:
    known = v.options.known_traits
    seen: set[tuple[str, str]] = set()
    for part in v.parts:
        if part.ast is None:
            continue
        for use in variable_uses(part.ast, part.translated, lambda name: name in RESERVED_NAMES):
            if use.hubspot_property is not None:
                if use.hubspot_property == "email":
                    continue
                trait = v.options.hubspot_properties.get(use.hubspot_property, use.hubspot_property)
                written = f"contact.{use.hubspot_property}"
            else:
                trait = written = use.name
            if (part.name, written) in seen:
                continue
            seen.add((part.name, written))
            if known is not None and trait not in known:
                yield part.issue(
                    "unknown-variable",
                    f"{written!r} is not a trait of the profile schema",
                    use.offset,
                    severity=v.options.unknown_trait,
                )
            elif not use.guarded and trait not in v.options.always_present:
                consequence = (
                    "fail to render" if v.source.missing is MissingPolicy.ERROR else "see nothing"
                )
                yield part.issue(
                    "missing-fallback",
                    f"{written!r} has no fallback; recipients without it will {consequence}"
                    f" (add |default(...) or test it with {{% if %}})",
                    use.offset,
                    severity=Severity.WARNING,
                )


def _locate_tag(v: Validation, written: str) -> tuple[Part, int | None]:
    needle = f"*|{written}|*"
    for part in v.parts:
        found = part.original.find(needle)
        if found != -1:
            return part, found
    return v.body, None


def _merge_tags(v: Validation) -> Iterator[Issue]:
    known = v.options.known_traits
    seen: set[str] = set()
    for tag in v.tags:
        if tag.trait is None or tag.written in seen:
            continue
        seen.add(tag.written)
        part, offset = _locate_tag(v, tag.written)
        # Offsets here are in the original text, so they are located without the map.
        line_column = part.lines.position(offset) if offset is not None else None
        where = {
            "part": part.name,
            "line": line_column.line if line_column else None,
            "column": line_column.column if line_column else None,
        }
        if known is not None and tag.trait not in known:
            yield Issue(
                v.options.unknown_trait, "unknown-variable",
                f"*|{tag.written}|* reads {tag.trait!r}, which is not in the profile schema",
                **where,  # type: ignore[arg-type]
            )  # fmt: skip
        elif not tag.default and tag.trait not in v.options.always_present:
            yield Issue(
                Severity.WARNING, "missing-fallback",
                f"*|{tag.written}|* has no default value; recipients without {tag.trait!r} "
                "will see nothing (set a default in the merge field table)",
                **where,  # type: ignore[arg-type]
            )  # fmt: skip


def _size(v: Validation) -> Iterator[Issue]:
    static = len(_JINJA.sub("", v.html).encode())
    if static > v.options.clip_bytes:
        yield Issue(
            Severity.WARNING,
            "gmail-clipping",
            f"the HTML is {static // 1024} KB before personalisation; Gmail clips messages"
            f" over {v.options.clip_bytes // 1024} KB",
            v.body.name,
        )
    if _STYLESHEET.search(v.body.original):
        yield Issue(
            Severity.WARNING,
            "external-stylesheet",
            "external stylesheets are not fetched and are dropped; put CSS in <style>",
            v.body.name,
        )
    if _SCRIPT.search(v.body.original):
        yield Issue(Severity.WARNING, "script", "email clients remove scripts", v.body.name)


def _links(v: Validation) -> Iterator[Issue]:
    for href in v.facts.static_hrefs:
        problem = link_problem(href)
        if problem is None:
            continue
        offset = v.body.original.find(href) if href else v.body.original.find('href=""')
        position = v.body.lines.position(offset) if offset >= 0 else None
        yield Issue(
            Severity.WARNING,
            "broken-link",
            problem,
            v.body.name,
            position.line if position else None,
            position.column if position else None,
        )


def link_problem(href: str) -> str | None:
    """What is wrong with a link written in a template, if anything."""
    url = href.strip()
    lowered = url.lower()
    if not url:
        return "a link has an empty href"
    if lowered.startswith(_DANGEROUS_SCHEMES):
        return f"link {url[:60]!r} uses a script or data URL, which mail clients block"
    if lowered.startswith(_LOCAL_SCHEMES):
        return None
    if not lowered.startswith(("http://", "https://")):
        return f"link {url[:60]!r} is not an absolute http(s) URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return f"link {url[:60]!r} is not a valid URL"
    if not parts.hostname or any(c.isspace() for c in url):
        return f"link {url[:60]!r} is not a valid URL"
    return None


def _compliance(v: Validation) -> Iterator[Issue]:
    required = v.options.require_compliance
    if required is None:
        required = v.source.kind is TemplateKind.MARKETING
    if not required:
        return
    if not v.facts.visible_unsubscribe:
        yield Issue(
            Severity.ERROR,
            "missing-unsubscribe",
            "marketing email needs a visible unsubscribe link:"
            ' <a href="{{ unsubscribe_url }}">Unsubscribe</a> or *|UNSUB|*',
            v.body.name,
        )
    literal = _address_line(v.options.postal_address)
    if not (v.facts.visible_postal_address or (literal and literal in v.text)):
        yield Issue(
            Severity.ERROR,
            "missing-postal-address",
            "marketing email must show the sender's postal address:"
            " {{ sender.address }} or *|LIST:ADDRESS|*",
            v.body.name,
        )
    if v.text_authored:
        unsubscribe, address = _text_mentions(v)
        if not unsubscribe:
            yield Issue(
                Severity.ERROR,
                "missing-unsubscribe",
                "the text part needs the unsubscribe link: {{ unsubscribe_url }} or *|UNSUB|*",
                "text",
            )
        if not (address or (literal and literal in v.text)):
            yield Issue(
                Severity.WARNING,
                "missing-postal-address",
                "the text part does not show the sender's postal address",
                "text",
            )


def _address_line(address: str | None) -> str:
    if not address:
        return ""
    return next((line.strip() for line in address.splitlines() if line.strip()), "")


def _text_mentions(v: Validation) -> tuple[bool, bool]:
    unsubscribe = bool(re.search(r"\bunsubscribe_(?:url|link)\b", v.text))
    address = bool(re.search(r"\bsender\.address|\bsite_settings\.company_street", v.text))
    for index, tag in enumerate(v.tags):
        if f"__mw_tag({index})" in v.text:
            unsubscribe = unsubscribe or tag.system == "unsubscribe_url"
            address = address or tag.system in POSTAL_ADDRESS_KEYS
    return unsubscribe, address
