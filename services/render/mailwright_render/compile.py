"""Publish-time compilation: a `TemplateSource` becomes a `CompiledTemplate`, or is refused.

The expensive work happens here, once per template version, never per recipient:

1. every piece is translated from merge tags and checked by the sandbox (syntax, unknown
   filters, unsafe attributes), errors at the author's line and column;
2. `{% content_block "name" %}` is expanded into the block's variants;
3. the body's Jinja is protected, MJML compiled to HTML, CSS inlined (no network);
4. one HTML pass wires tracked links, the open pixel and the preheader, and lays out
   the text part unless one was authored;
5. the constructs are restored and checked, and validation runs (`validate.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import css_inline
import mjml

from mailwright_render.artefact import CompiledBlock, CompiledTemplate, CompiledVariant
from mailwright_render.checks import check_part
from mailwright_render.context import DEFAULT_HUBSPOT_PROPERTIES
from mailwright_render.engine import environment
from mailwright_render.errors import Issue, Severity, TemplateInvalid
from mailwright_render.htmlpass import Link, PassResult, Role, body_pass, static_link
from mailwright_render.htmlprep import Placeholders, protect, restore
from mailwright_render.jinjascan import Construct, scan
from mailwright_render.mergetags import (
    DEFAULT_MERGE_FIELDS,
    POSTAL_ADDRESS_KEYS,
    MergeField,
    MergeTagTranslator,
)
from mailwright_render.model import TemplateSource
from mailwright_render.parts import Part, prepare
from mailwright_render.positions import OffsetMap
from mailwright_render.validate import Validation, validate

_CONTENT_BLOCK = re.compile(
    r"\{%[-+]?\s*content_block\s+([\"'])([A-Za-z_][A-Za-z0-9_-]*)\1\s*[-+]?%\}"
)
_BLOCK_KEYWORD = "content_block"
_EXPRESSION = re.compile(r"^\{\{[-+]?\s*(.*?)\s*[-+]?\}\}$", re.DOTALL)
_TAG_CALL = re.compile(r"^__mw_tag\((\d+)\)$")
_TEXT_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_UNSUBSCRIBE_NAMES = ("unsubscribe_url", "unsubscribe_link")
_ADDRESS_NAMES = ("sender.address", "sender.address_line", "site_settings.company_street_address")


@dataclass(frozen=True)
class CompileOptions:
    """Workspace settings that shape compilation and validation.

    `known_traits` is the profile schema (None: not checked); an unknown trait is an
    error or a warning by `unknown_trait`. `postal_address` is the sender's address,
    accepted as literal text in the body; `require_compliance` defaults to "is
    marketing". `rule_check` raises ValueError for a rule the segment language rejects.
    """

    merge_fields: Mapping[str, MergeField] = field(default_factory=lambda: DEFAULT_MERGE_FIELDS)
    hubspot_properties: Mapping[str, str] = field(
        default_factory=lambda: DEFAULT_HUBSPOT_PROPERTIES
    )
    known_traits: frozenset[str] | None = None
    unknown_trait: Severity = Severity.WARNING
    always_present: frozenset[str] = frozenset({"email"})
    postal_address: str | None = None
    require_compliance: bool | None = None
    clip_bytes: int = 102 * 1024
    rule_check: Callable[[str], None] | None = None


def compile_template(
    source: TemplateSource, options: CompileOptions | None = None
) -> CompiledTemplate:
    """Compile and validate one template version; `TemplateInvalid` lists every error."""
    return _Compilation(source, options or CompileOptions()).run()


def validate_template(
    source: TemplateSource, options: CompileOptions | None = None
) -> tuple[Issue, ...]:
    """Every error and warning publishing would report, without raising."""
    try:
        return compile_template(source, options).warnings
    except TemplateInvalid as invalid:
        return invalid.issues


class _Compilation:
    def __init__(self, source: TemplateSource, options: CompileOptions) -> None:
        self.source = source
        self.options = options
        self.translator = MergeTagTranslator(options.merge_fields)
        self.issues: list[Issue] = []
        self.links: list[Link] = []
        self._consumed: set[int] = set()

    def _part(self, name: str, text: str, *, html: bool, mask: bool = False) -> Part:
        part, issues = prepare(
            self.translator,
            name,
            text,
            html=html,
            missing=self.source.missing,
            mask=_mask_blocks if mask else None,
        )
        self.issues.extend(issues)
        return part

    def run(self) -> CompiledTemplate:
        source = self.source
        subjects = [self._part(f"subject[{v.key}]", v.source, html=False) for v in source.subject]
        preheaders = [
            self._part(f"preheader[{v.key}]", v.source, html=False) for v in source.preheader
        ]
        body_name = "mjml" if source.mjml is not None else "html"
        body = self._part(body_name, source.mjml or source.html or "", html=True, mask=True)
        text = self._part("text", source.text, html=False) if source.text is not None else None
        blocks = self._blocks()
        self._raise_on_errors()

        expanded, expansion = self._expand(body, blocks)
        self._raise_on_errors()
        result, placeholders = self._html(body, expanded, expansion)
        html = self._restore(body, result.html, placeholders, expansion, text_part=False)
        generated = self._restore(body, result.text, placeholders, expansion, text_part=True)
        text_source = self._authored_text(text) if text is not None else generated
        self._final_check(body, html, text_source)
        self._raise_on_errors()

        validation = Validation(
            source=source,
            options=self.options,
            parts=[*subjects, *preheaders, body, *([text] if text else []), *blocks],
            tags=self.translator.tables.tags,
            facts=result.facts,
            html=html,
            text=text_source,
            text_authored=text is not None,
            body=body,
        )
        self.issues.extend(validate(validation))
        self._raise_on_errors()
        return CompiledTemplate(
            name=source.name,
            kind=source.kind,
            missing=source.missing,
            subject=tuple(
                CompiledVariant(v.key, v.weight, p.translated)
                for v, p in zip(source.subject, subjects, strict=True)
            ),
            preheader=tuple(
                CompiledVariant(v.key, v.weight, p.translated)
                for v, p in zip(source.preheader, preheaders, strict=True)
            ),
            html=html,
            text=text_source,
            links=tuple(self.links),
            tags=tuple(self.translator.tables.tags),
            conditions=tuple(self.translator.tables.conditions),
            blocks=tuple(
                CompiledBlock(
                    b.name, tuple(v.key for v in b.variants), tuple(v.when for v in b.variants)
                )
                for b in source.blocks
            ),
            warnings=tuple(self.issues),
        )

    def _raise_on_errors(self) -> None:
        if any(issue.is_error for issue in self.issues):
            raise TemplateInvalid(tuple(self.issues))

    # Content blocks -----------------------------------------------------------------

    def _blocks(self) -> list[Part]:
        parts: list[Part] = []
        for block in self.source.blocks:
            for variant in block.variants:
                parts.append(
                    self._part(f"block {block.name}/{variant.key}", variant.content, html=True)
                )
                self._check_rule(block.name, variant.key, variant.when)
            parts.append(self._part(f"block {block.name}/default", block.default, html=True))
        return parts

    def _check_rule(self, block: str, key: str, when: object) -> None:
        rule = getattr(when, "rule", None)
        if rule is None or self.options.rule_check is None:
            return
        try:
            self.options.rule_check(rule)
        except ValueError as error:
            self.issues.append(
                Issue(Severity.ERROR, "invalid-rule", str(error), f"block {block}/{key}")
            )

    def _expand(self, body: Part, blocks: list[Part]) -> tuple[str, OffsetMap]:
        by_name = {block.name: index for index, block in enumerate(self.source.blocks)}
        contents = iter(blocks)
        expansions: dict[str, str] = {}
        for index, block in enumerate(self.source.blocks):
            variants = [next(contents).translated for _ in block.variants]
            default = next(contents).translated
            chain = "".join(
                f"{{% {'if' if i == 0 else 'elif'} __mw_block({index}) == {i} %}}{content}"
                for i, content in enumerate(variants)
            )
            expansions[block.name] = (
                f"{chain}{{% else %}}{default}{{% endif %}}" if chain else default
            )
        out: list[str] = []
        offsets = OffsetMap()
        used: set[str] = set()
        written = length = 0
        for construct, name in _block_references(body.translated):
            if name not in by_name:
                self.issues.append(
                    body.issue(
                        "unknown-block", f"content block {name!r} is not defined", construct.start
                    )
                )
                continue
            used.add(name)
            out.append(body.translated[written : construct.start])
            length += construct.start - written
            offsets.record(length, length + len(expansions[name]), construct.start, construct.end)
            out.append(expansions[name])
            length += len(expansions[name])
            written = construct.end
        out.append(body.translated[written:])
        for name in by_name.keys() - used:
            self.issues.append(
                Issue(
                    Severity.WARNING,
                    "unused-block",
                    f"content block {name!r} is never placed",
                    f"block {name}",
                )
            )
        return "".join(out), offsets

    # The body -----------------------------------------------------------------------

    def _html(
        self, body: Part, expanded: str, expansion: OffsetMap
    ) -> tuple[PassResult, Placeholders]:
        placeholders, issues = protect(
            expanded, scan(expanded), body.name, lambda offset: body.locate(offset, expansion)
        )
        self.issues.extend(issues)
        self._raise_on_errors()
        assert placeholders is not None
        document = placeholders.text
        if self.source.mjml is not None:
            try:
                document = mjml.mjml2html(document, include_loader=_refuse_include)
            except ValueError as error:
                self.issues.append(Issue(Severity.ERROR, "mjml", f"MJML: {error}", body.name))
                self._raise_on_errors()
        if re.search(r"<style|<link", document, re.IGNORECASE):
            inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
            try:
                document = inliner.inline(document)
            except ValueError as error:
                self.issues.append(
                    Issue(Severity.ERROR, "css", f"CSS inlining: {error}", body.name)
                )
                self._raise_on_errors()
        role = _roles(placeholders, self.translator)
        result = body_pass(document, placeholders, role, self.links)
        self._consumed = result.facts.consumed
        for index in result.facts.unbalanced_hrefs:
            self.issues.append(body.issue(
                "jinja-placement",
                "a Jinja block opened in an href must close in the same href"
                " (write the whole link in each branch)",
                placeholders.constructs[index].start, expansion,
            ))  # fmt: skip
        self._raise_on_errors()
        return result, placeholders

    def _restore(
        self,
        body: Part,
        text: str,
        placeholders: Placeholders,
        expansion: OffsetMap,
        *,
        text_part: bool,
    ) -> str:
        restored = restore(text, placeholders, frozenset(self._consumed))
        what = "the text part" if text_part else "HTML processing (MJML, CSS inlining)"
        for index in restored.missing_statements:
            self.issues.append(body.issue(
                "lost-statement",
                f"this statement did not survive {what}; keep each branch's HTML balanced,"
                " or author a text part",
                placeholders.constructs[index].start, expansion,
            ))  # fmt: skip
        if restored.misordered:
            self.issues.append(
                Issue(
                    Severity.ERROR,
                    "lost-statement",
                    f"{what} reordered Jinja statements",
                    body.name,
                )
            )
        if not text_part:
            for index in restored.missing_expressions:
                self.issues.append(body.issue(
                    "lost-expression", f"this expression was dropped by {what}",
                    placeholders.constructs[index].start, expansion,
                ))  # fmt: skip
        return restored.text

    def _authored_text(self, text: Part) -> str:
        """Track the fixed links of an authored text part; leave everything else alone."""
        out: list[str] = []
        written = 0
        for construct in [
            *scan(text.translated),
            Construct(len(text.translated), len(text.translated), "comment"),
        ]:
            segment = text.translated[written : construct.start]
            out.append(_TEXT_URL.sub(self._text_link, segment))
            out.append(text.translated[construct.start : construct.end])
            written = construct.end
        return "".join(out)

    def _text_link(self, match: re.Match[str]) -> str:
        self.links.append(static_link(match.group(0)))
        return f"{{{{ __mw_link({len(self.links) - 1}) }}}}"

    def _final_check(self, body: Part, html: str, text: str) -> None:
        for name, compiled, is_html in ((body.name, html, True), ("text", text, False)):
            checked = check_part(
                environment(is_html, self.source.missing), compiled, authored=False
            )
            for finding in checked.findings:
                self.issues.append(
                    Issue(Severity.ERROR, "compile", f"compiled {name}: {finding.message}", name)
                )


def _refuse_include(path: str) -> str:
    raise ValueError(f"mj-include of {path!r} is not allowed")


def _block_references(translated: str) -> list[tuple[Construct, str]]:
    found: list[tuple[Construct, str]] = []
    for construct in scan(translated):
        if construct.kind == "statement" and construct.keyword == _BLOCK_KEYWORD:
            match = _CONTENT_BLOCK.fullmatch(construct.text(translated))
            found.append((construct, match.group(2) if match else ""))
    return found


def _mask_blocks(translated: str) -> str:
    """Blank `{% content_block %}` statements to a same-length expression for checking."""
    out = translated
    for construct, _ in _block_references(translated):
        inner = "".join(
            "\n" if c == "\n" else " " for c in translated[construct.start + 4 : construct.end - 2]
        )
        out = out[: construct.start] + "{{ 0" + inner + "}}" + out[construct.end :]
    return out


def _roles(placeholders: Placeholders, translator: MergeTagTranslator) -> Callable[[int], Role]:
    tags = translator.tables.tags

    def role(index: int) -> Role:
        construct = placeholders.constructs[index]
        if construct.kind != "expression":
            return ""
        match = _EXPRESSION.match(placeholders.originals[index])
        expression = match.group(1) if match else ""
        call = _TAG_CALL.match(expression)
        if call is not None:
            system = tags[int(call.group(1))].system
            if system == "unsubscribe_url":
                return "unsubscribe"
            return "postal_address" if system in POSTAL_ADDRESS_KEYS else ""
        head = re.split(r"[\s|(]", expression, maxsplit=1)[0]
        if head in _UNSUBSCRIBE_NAMES:
            return "unsubscribe"
        if head.startswith(_ADDRESS_NAMES):
            return "postal_address"
        return ""

    return role
