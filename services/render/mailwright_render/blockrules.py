"""Content-block rules in the segment rule language, as the render service runs them.

A block variant may be chosen by a rule (`trait plan = "gold" and in segment "vip"`).
Render knows what delivery tells it about a recipient: traits and the segments they are
in, not their event history. So a block rule may only use trait conditions and segment
membership; a rule about events or email engagement is refused at publish, with the
advice to put it in a segment (where it is evaluated against the full history) and test
membership instead.

`check_block_rule` is the `rule_check` of `CompileOptions`; `BlockRules` is the
`RuleEvaluator` the renderer calls, with parsed rules cached by their text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from mailwright.rules import (
    And,
    Or,
    Person,
    Rule,
    RuleCheckError,
    RuleError,
    SegmentMembership,
    TraitCondition,
    TraitDateCondition,
    TraitWithinLast,
    check,
    conditions,
    evaluate,
    parse,
    to_text,
)
from mailwright_render.model import SegmentCondition

BLOCK_CONDITIONS: tuple[type, ...] = (
    TraitCondition,
    TraitDateCondition,
    TraitWithinLast,
    SegmentMembership,
)


def check_block_rule(text: str) -> None:
    """Raise ValueError unless `text` is a rule that render can evaluate."""
    _parsed(text)


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> Rule:
    try:
        rule = parse(text)
        check(rule).raise_for_errors()
    except RuleCheckError as error:
        raise ValueError(f"rule {text!r}: {error}") from None
    except RuleError as error:
        raise ValueError(f"rule {text!r}: {error}") from None
    for condition in conditions(rule):
        if not isinstance(condition, BLOCK_CONDITIONS):
            raise ValueError(
                f"content-block rules may only test traits and segment membership, but"
                f" `{to_text(condition)}` needs the person's history, which render does not"
                ' have: put it in a segment and use `in segment "..."` instead'
            )
    return rule


class BlockRules:
    """Decides rule conditions of content blocks for one recipient (a `RuleEvaluator`)."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock

    def __call__(self, rule: str, traits: Mapping[str, object], segments: frozenset[str]) -> bool:
        # A rule that slipped past publish (an artefact from an older release) raises
        # ValueError here, which the renderer turns into this recipient's error.
        parsed = _parsed(rule)
        return evaluate(parsed, Person(traits=traits, segments=segments), self._clock())


def segments_rule(segments: tuple[str, ...], match: str) -> str:
    """The rule text of a membership condition over several segments (any, all, none)."""
    negated = match == "none"
    members: list[Rule] = [SegmentMembership(segment, negated=negated) for segment in segments]
    if len(members) == 1:
        return to_text(members[0])
    return to_text(Or(tuple(members)) if match == "any" else And(tuple(members)))


def condition_text(condition: SegmentCondition) -> str:
    """A segment condition as rule text, for contracts that carry one segment or a rule."""
    return segments_rule(condition.segments, condition.match)
