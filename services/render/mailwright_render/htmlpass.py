"""One pass over a compiled body: tracked links, pixel, preheader, text part, compliance facts.

Runs once per template version on the protected HTML (see `htmlprep.py`), with a real
HTML parser, so every per-recipient step is already decided and written as template
code: each trackable `<a href>` becomes a call that signs the rendered URL for its
reader; unsubscribe links, `mailto:`, `tel:`, anchors and links marked
`data-mw-notrack` stay as written. The same events produce the plain-text part (links
kept as "label (url)"), and tell validation whether an unsubscribe link and the postal
address are visible.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from mailwright_render.htmlprep import Placeholders
from mailwright_render.jinjascan import BLOCK_TAGS
from mailwright_render.positions import LineIndex
from mailwright_render.textpart import TextWriter

NOTRACK_ATTRIBUTE = "data-mw-notrack"
UNTRACKED_SCHEMES = ("mailto:", "tel:", "sms:", "#")
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|opacity\s*:\s*0(?:\.0*)?\s*(?:;|$)"
    r"|max-height\s*:\s*0(?:px)?\s*(?:;|$)",
    re.IGNORECASE,
)
_EXPRESSION = re.compile(r"^\{\{[-+]?\s*(.*?)\s*[-+]?\}\}$", re.DOTALL)
_SKIPPED = frozenset({"head", "style", "script", "title", "template"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr"}
)  # fmt: skip
_BLOCKS = {
    "p": 2, "div": 1, "table": 1, "tr": 1, "ul": 1, "ol": 1, "li": 1, "blockquote": 2,
    "h1": 2, "h2": 2, "h3": 2, "h4": 2, "h5": 2, "h6": 2, "section": 1, "article": 1,
    "header": 1, "footer": 1, "center": 1, "pre": 2, "address": 1, "dl": 1, "dt": 1, "dd": 1,
}  # fmt: skip

# What an expression placeholder stands for, as far as compliance cares.
Role = str  # "unsubscribe" | "postal_address" | ""


@dataclass(frozen=True)
class Link:
    """A link of a compiled template: its URL if fixed at publish, and how it is treated."""

    url: str | None
    tracked: bool
    unsubscribe: bool = False


@dataclass
class BodyFacts:
    """What the pass learned about a body, for validation."""

    visible_unsubscribe: bool = False
    visible_postal_address: bool = False
    static_hrefs: list[str] = field(default_factory=list)
    unbalanced_hrefs: list[int] = field(default_factory=list)
    consumed: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class PassResult:
    html: str
    text: str
    facts: BodyFacts


def static_link(url: str) -> Link:
    bare = url.strip()
    lowered = bare.lower()
    tracked = lowered.startswith(("http://", "https://")) and not lowered.startswith(
        UNTRACKED_SCHEMES
    )
    return Link(bare, tracked)


class _BodyPass(HTMLParser):
    def __init__(
        self,
        source: str,
        placeholders: Placeholders,
        role: Callable[[int], Role],
        links: list[Link],
    ) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.lines = LineIndex(source)
        self.placeholders = placeholders
        self.role = role
        self.links = links
        self.token_pattern = placeholders.pattern()
        self.splices: list[tuple[int, int, str]] = []
        self.text = TextWriter()
        self.facts = BodyFacts()
        self.hidden: list[list[object]] = []  # [tag, nesting] of hidden elements
        self.skipping: list[str] = []
        self.anchor: tuple[int, str, Link | None, bool] | None = None
        self.saw_body = False
        self.closed_body = False

    # Helpers ------------------------------------------------------------------------

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.lines.offset(line, column + 1)

    def _invisible(self) -> bool:
        return bool(self.hidden) or bool(self.skipping)

    def _placeholders_in(self, value: str) -> list[int]:
        return [int(m.group(1) or m.group(2)) for m in self.token_pattern.finditer(value)]

    def _closes(self, index: int) -> bool:
        keyword = self.placeholders.constructs[index].keyword
        return keyword.startswith("end") or keyword in ("else", "elif")

    def _keep_statements(self, value: str) -> None:
        """Write an attribute's statements to the text part, so it keeps the body's logic."""
        for index in self._placeholders_in(value):
            if self.placeholders.is_statement(index):
                self.text.zero_width(self.placeholders.token(index), closes=self._closes(index))

    def _sole_expression(self, href: str, indices: list[int]) -> str | None:
        """The Jinja expression an href consists of, if it is exactly one `{{ … }}`."""
        if len(indices) != 1 or href.strip() != self.placeholders.token(indices[0]):
            return None
        if self.placeholders.constructs[indices[0]].kind != "expression":
            return None
        match = _EXPRESSION.match(self.placeholders.originals[indices[0]])
        return match.group(1) if match and match.group(1) else None

    def _balanced(self, indices: list[int]) -> bool:
        depth = 0
        for index in indices:
            construct = self.placeholders.constructs[index]
            if construct.kind != "statement":
                continue
            if construct.keyword in BLOCK_TAGS:
                depth += 1
            elif construct.keyword.startswith("end"):
                depth -= 1
                if depth < 0:
                    return False
        return depth == 0

    # Events -------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, self_closing: bool) -> None:
        values = dict(attrs)
        if tag in _SKIPPED and not self_closing:
            self.skipping.append(tag)
        if self.hidden and self.hidden[-1][0] == tag and tag not in _VOID:
            self.hidden[-1][1] = int(str(self.hidden[-1][1])) + 1
        hidden = "hidden" in values or bool(_HIDDEN_STYLE.search(values.get("style") or ""))
        if hidden and tag not in _VOID and not self_closing:
            self.hidden.append([tag, 0])
        if tag in ("a", "area") and "href" in values:
            self._link(tag, attrs, values, hidden)
        else:
            for _, value in attrs:
                self._keep_statements(value or "")
        if tag == "body" and not self.saw_body:
            self.saw_body = True
            end = self._offset() + len(self.get_starttag_text() or "")
            self.splices.append((end, 0, "{{ __mw_preheader() }}"))
        if tag == "br":
            self.text.block(1, force=True)
        elif tag == "hr":
            self.text.block(1)
            self.text.words("----------")
            self.text.block(1)
        elif tag == "li":
            self.text.block(1)
            self.text.words("- ")
        elif tag in _BLOCKS:
            self.text.block(_BLOCKS[tag])
        elif tag in ("td", "th"):
            self.text.space()
        elif tag == "img" and self.anchor is not None and not self._invisible():
            self.text.words(values.get("alt") or "")

    def _link(
        self,
        tag: str,
        attrs: list[tuple[str, str | None]],
        values: dict[str, str | None],
        hidden: bool,
    ) -> None:
        href = values.get("href") or ""
        indices = self._placeholders_in(href)
        unsubscribe = any(self.role(i) == "unsubscribe" for i in indices)
        notrack = NOTRACK_ATTRIBUTE in values
        link: Link | None
        if not indices:
            self.facts.static_hrefs.append(href)
            link = static_link(href)
            link = Link(link.url, link.tracked and not notrack)
        elif not self._balanced(indices):
            # A block opened in this href closes elsewhere: it cannot be wrapped.
            self.facts.unbalanced_hrefs.append(indices[0])
            link = Link(None, False, unsubscribe)
        else:
            link = Link(None, not (unsubscribe or notrack), unsubscribe)
        index = len(self.links)
        self.links.append(link)
        expression = self._sole_expression(href, indices)
        if link.tracked and link.url is not None:
            html_href = text_href = f"{{{{ __mw_link({index}) }}}}"
        elif link.tracked and expression is not None:
            # The whole href is one expression: track its value directly.
            self.facts.consumed.add(indices[0])
            html_href = text_href = f"{{{{ __mw_track({index}, ({expression})) }}}}"
        elif link.tracked:
            opener = f"{{% filter __mw_click({index}) %}}"
            html_href = f"{opener}{_attribute(href)}{{% endfilter %}}"
            text_href = f"{opener}{href}{{% endfilter %}}"
        else:
            html_href, text_href = _attribute(href), href
        rebuilt = "".join(
            f' {name}="{html_href}"'
            if name == "href"
            else (f" {name}" if value is None else f' {name}="{_attribute(value)}"')
            for name, value in attrs
            if name != NOTRACK_ATTRIBUTE
        )
        raw = self.get_starttag_text() or ""
        closing = "/>" if raw.rstrip().endswith("/>") else ">"
        self.splices.append((self._offset(), len(raw), f"<{tag}{rebuilt}{closing}"))
        for name, value in attrs:
            if name != "href":
                self._keep_statements(value or "")
        if tag == "a":
            visible = not (hidden or self._invisible())
            self.anchor = (self.text.mark(), text_href, link, visible)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()
        if self.hidden and self.hidden[-1][0] == tag:
            nesting = int(str(self.hidden[-1][1]))
            if nesting:
                self.hidden[-1][1] = nesting - 1
            else:
                self.hidden.pop()
        if tag == "a" and self.anchor is not None:
            self._end_link()
        if tag == "body" and not self.closed_body:
            self.closed_body = True
            self.splices.append((self._offset(), 0, "{{ __mw_open_pixel() }}"))
        if tag in _BLOCKS:
            self.text.block(_BLOCKS[tag])

    def _end_link(self) -> None:
        assert self.anchor is not None
        mark, text_href, link, visible = self.anchor
        self.anchor = None
        label = self.text.since(mark).strip()
        if link is not None and link.unsubscribe and visible and label:
            self.facts.visible_unsubscribe = True
        if link is not None and link.url is not None and link.url.startswith("#"):
            return
        if link is not None and link.url is not None and label == link.url:
            return
        self.text.words(f" ({text_href})" if label else text_href)

    def handle_data(self, data: str) -> None:
        if not self._invisible():
            self.text.words(data)

    def handle_comment(self, data: str) -> None:
        match = self.token_pattern.fullmatch(f"<!--{data}-->")
        if match is None:
            return
        index = int(match.group(1))
        placeholder = self.placeholders.comment(index)
        if self.placeholders.is_statement(index):
            self.text.zero_width(placeholder, closes=self._closes(index))
        elif not self._invisible():
            self.text.words(placeholder)
            if self.role(index) == "postal_address":
                self.facts.visible_postal_address = True


def _attribute(value: str) -> str:
    return html.escape(value, quote=True).replace("&#x27;", "'")


def body_pass(
    source: str, placeholders: Placeholders, role: Callable[[int], Role], links: list[Link]
) -> PassResult:
    """Rewrite links, place pixel and preheader, and derive the text part (still protected)."""
    parser = _BodyPass(source, placeholders, role, links)
    parser.feed(source)
    parser.close()
    splices = sorted(parser.splices, key=lambda splice: splice[0])
    out: list[str] = []
    written = 0
    if not parser.saw_body:
        out.append("{{ __mw_preheader() }}")
    for offset, removed, inserted in splices:
        out.append(source[written:offset])
        out.append(inserted)
        written = offset + removed
    out.append(source[written:])
    if not parser.closed_body:
        out.append("{{ __mw_open_pixel() }}")
    return PassResult("".join(out), parser.text.result(), parser.facts)
