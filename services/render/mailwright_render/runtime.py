"""One recipient's answers to what a compiled template asks at render time.

Merge tags read traits and system values, merge conditions evaluate, links are signed
for this reader, content blocks pick their variant, the pixel and the preheader are
written. An instance lives for one message and is reached through the render scope.
"""

from __future__ import annotations

from collections.abc import Callable
from html import unescape
from urllib.parse import quote

from markupsafe import Markup, escape

from mailwright_render.artefact import CompiledTemplate
from mailwright_render.context import Links, Recipient, Sender
from mailwright_render.errors import RenderError
from mailwright_render.filters import format_date, parse_locale, php_date
from mailwright_render.guards import escape_text, marked
from mailwright_render.mergetags import MergeTag, as_text, evaluate
from mailwright_render.model import RuleEvaluator, SegmentCondition
from mailwright_render.scope import current_scope
from mailwright_render.tracking import Tracker, untracked_click

_PREHEADER_START = (
    '<div style="display:none;font-size:1px;color:transparent;line-height:1px;max-height:0;'
    'max-width:0;opacity:0;overflow:hidden;mso-hide:all;">'
)
# The padding keeps mail clients from pulling body text into the inbox preview.
_PREHEADER_END = "&#847;&zwnj;&nbsp;" * 40 + "</div>"
_EMPTY = Markup("")
_ENCODINGS: dict[str, Callable[[str], str]] = {
    "UPPER": str.upper,
    "LOWER": str.lower,
    "TITLE": str.title,
    "URL": lambda text: quote(text, safe=""),
    "HTML": lambda text: text,
}


class MessageRuntime:
    """Implements `scope.RuntimeHooks` for one recipient's message."""

    def __init__(
        self,
        compiled: CompiledTemplate,
        recipient: Recipient,
        sender: Sender,
        links: Links,
        tracker: Tracker | None,
        rule_evaluator: RuleEvaluator | None,
    ) -> None:
        self.compiled = compiled
        self.recipient = recipient
        self.sender = sender
        self.links = links
        self.tracker = tracker
        self.rule_evaluator = rule_evaluator
        self.subject = ""
        self.preheader = ""
        self._choices: dict[int, int] = {}
        self._tracked = compiled.tracked_links

    # Merge tags ---------------------------------------------------------------------

    def _system(self, key: str, tag: MergeTag | None = None) -> object:
        if key == "email":
            return self.recipient.email
        if key == "unsubscribe_url":
            return self.links.unsubscribe
        if key == "preferences_url":
            return self.links.preferences
        if key == "view_in_browser_url":
            return self.links.view_in_browser
        if key == "postal_address":
            return self.sender.postal_address
        if key == "postal_address_line":
            return self.sender.postal_address_line
        if key == "company":
            return self.sender.company
        if key == "sender_name":
            return self.sender.name
        if key == "subject":
            return self.subject
        if key == "preheader":
            return self.preheader
        scope = current_scope()
        today = scope.now.astimezone(scope.timezone)
        if key == "current_year":
            return str(today.year)
        if key == "date" and tag is not None and tag.date_format:
            return php_date(tag.date_format, today, parse_locale(scope.locale))
        if key == "date":
            return format_date(today)
        raise RenderError(f"unknown system merge tag value {key!r}")

    def _value(self, trait: str | None, system: str | None, tag: MergeTag | None = None) -> object:
        if system is not None:
            return self._system(system, tag)
        return self.recipient.traits.get(trait or "")

    def merge_tag(self, index: int, html: bool) -> object:
        tag = self.compiled.tags[index]
        value = self._value(tag.trait, tag.system, tag)
        text = as_text(value)
        if not text:
            text = tag.default
        if tag.encoding is not None:
            text = _ENCODINGS[tag.encoding](text)
        if html and "\n" in text:
            return Markup("<br>").join(escape(line) for line in text.splitlines())
        return text

    def merge_condition(self, index: int) -> bool:
        condition = self.compiled.conditions[index]
        return evaluate(condition, self._value(condition.trait, condition.system))

    # Links --------------------------------------------------------------------------

    def link(self, index: int, html: bool) -> str:
        link = self.compiled.links[index]
        url = link.url or ""
        if self.tracker is not None and link.tracked:
            return self.tracker.fixed_click(url)
        return untracked_click(url)

    def click(self, index: int, rendered: str, html: bool) -> str:
        url = unescape(rendered) if html else rendered
        if self.tracker is not None and self._tracked[index]:
            return self.tracker.click(url)
        return untracked_click(url)

    def track(self, index: int, value: object) -> str:
        """A link whose whole href is one expression: its value, tracked."""
        url = value if type(value) is str else "" if value is None else str(value)
        if self.tracker is not None and self._tracked[index]:
            return self.tracker.click(url)
        return untracked_click(url)

    def open_pixel(self) -> Markup:
        return self.tracker.open_pixel() if self.tracker is not None else _EMPTY

    def preheader_html(self) -> Markup:
        if not self.preheader:
            return _EMPTY
        # The escaped preheader between constant HTML: built as a string, marked once.
        return marked(_PREHEADER_START + escape_text(self.preheader) + _PREHEADER_END)

    # Content blocks -----------------------------------------------------------------

    def block_choice(self, index: int) -> int:
        """Index of the first variant whose condition holds, or -1 for the default."""
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choose(index)
            self._choices[index] = choice
        return choice

    def chosen_blocks(self) -> tuple[tuple[str, str], ...]:
        """Block name and chosen variant key ("" for the default) of each block rendered."""
        if not self._choices:
            return ()
        blocks = self.compiled.blocks
        return tuple(
            (blocks[index].name, blocks[index].keys[choice] if choice >= 0 else "")
            for index, choice in sorted(self._choices.items())
        )

    def _choose(self, index: int) -> int:
        block = self.compiled.blocks[index]
        segments = self.recipient.segments
        for position, condition in enumerate(block.conditions):
            if isinstance(condition, SegmentCondition):
                if condition.holds(segments):
                    return position
                continue
            if self.rule_evaluator is None:
                raise RenderError(
                    f"content block {block.name!r} has a rule condition but no rule"
                    " evaluator is configured"
                )
            try:
                holds = self.rule_evaluator(condition.rule, self.recipient.traits, segments)
            except (ValueError, TypeError, LookupError) as error:
                raise RenderError(
                    f"rule of content block {block.name!r}/{block.keys[position]!r}: {error}"
                ) from None
            if holds:
                return position
        return -1
